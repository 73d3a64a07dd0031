//! `peer-bench`'s command line: help on every mode, status 2 and clap's message for a bad
//! option. Nothing here runs a benchmark (the modes' help exits before any peer starts).

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peer-bench")).args(args).output().expect("peer-bench runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_lists_every_mode_and_hides_child() {
    let o = bench(&["--help"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    for mode in ["w1", "multi", "concurrent", "sim", "wan", "maint", "maint-net", "codec", "all"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with(&format!("{mode} "))), "`{mode}` missing:\n{out}");
    }
    assert!(!out.lines().any(|l| l.trim_start().starts_with("child ")), "the internal mode is listed:\n{out}");
    // Options without a mode are `all`'s.
    assert!(out.contains("--big-sim"), "{out}");
}

#[test]
fn every_mode_has_help_with_its_options_and_defaults() {
    let modes: [(&str, &[&str]); 9] = [
        ("w1", &["--peers <N>", "[default: 300]", "--api", "--svg-dir", "[default: bench-out]"]),
        ("multi", &["--procs", "[default: 1000]"]),
        ("concurrent", &["--threads", "--seconds"]),
        ("sim", &["--lookups", "--tables", "--far", "--near"]),
        ("wan", &["--peers <N>...", "[default: 10000 100000]", "--dead", "[default: 0.1]", "--no-cpu"]),
        ("maint", &["--warmup-hours", "--republish-s", "[default: 3600]"]),
        ("maint-net", &["--interval", "--windows"]),
        ("codec", &["--seconds"]),
        ("all", &["--big-sim", "--svg-dir"]),
    ];
    for (mode, wanted) in modes {
        let o = bench(&[mode, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{mode} --help: {o:?}");
        let out = stdout(&o);
        for w in wanted {
            assert!(out.contains(w), "`{mode} --help` lacks `{w}`:\n{out}");
        }
    }
    // `help MODE` as well (`make bench BENCH_ARGS=help` keeps working).
    assert_eq!(bench(&["help", "w1"]).status.code(), Some(0));
}

#[test]
fn version() {
    let o = bench(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).trim(), format!("peer-bench {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_options_exit_2_with_a_message() {
    for args in [
        &["w1", "--bogus", "1"][..],
        &["w1", "--api", "java"],
        &["w1", "--peers", "many"],
        &["w1", "--peers"],
        &["sim", "--tables", "round"],
        &["wan", "--dead", "many"],
        &["all", "--big-sim", "maybe"],
        &["--no-such-option"],
        &["no-such-mode"],
    ] {
        let o = bench(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_mode_refusing_its_figures_exits_1() {
    // Parsed fine, refused by the mode before any peer starts.
    let o = bench(&["w1", "--peers", "3"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("peer-bench w1: error: --peers must be at least 4"));
    let o = bench(&["wan", "--dead", "0.95"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("peer-bench wan: error: need --dead in 0..0.9"));
}
