//! Generates the C header from src/ffi.rs with the pinned cbindgen (config: cbindgen.toml).
//! The header always goes to $OUT_DIR/peer.h (the freshness test compares it with the
//! checked-in copy) and to include/peer.h only when its content changed, so a build leaves
//! git clean; with PEER_HEADER_NO_WRITE set, include/peer.h is never touched.
//! Only src/ffi.rs and its submodules (src/ffi/) are parsed, so a syntax error elsewhere
//! cannot break header generation.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    // cbindgen follows `mod` items, so the submodules' files are read too.
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PEER_HEADER_NO_WRITE");

    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("reading cbindgen.toml");
    let v = |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("version");
    let macros = format!(
        "#define PEER_VERSION_MAJOR {}\n#define PEER_VERSION_MINOR {}\n#define PEER_VERSION_PATCH {}\n#define PEER_VERSION_STRING \"{}\"",
        v("MAJOR"),
        v("MINOR"),
        v("PATCH"),
        env::var("CARGO_PKG_VERSION").expect("version")
    );
    config.after_includes = Some(match config.after_includes.take() {
        Some(extra) => format!("{macros}\n{extra}"),
        None => macros,
    });

    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi.rs"))
        .generate()
        .expect("cbindgen failed on src/ffi.rs");
    let mut text = Vec::new();
    bindings.write(&mut text);

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("peer.h");
    fs::write(&out, &text).expect("writing $OUT_DIR/peer.h");

    if env::var_os("PEER_HEADER_NO_WRITE").is_none() {
        let header = root.join("include/peer.h");
        if fs::read(&header).ok().as_deref() != Some(&text[..]) {
            fs::create_dir_all(root.join("include")).expect("creating include/");
            fs::write(&header, &text).expect("writing include/peer.h");
        }
    }
}
