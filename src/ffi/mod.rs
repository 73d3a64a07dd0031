//! The C boundary: the functions, types and constants of `include/peer.h`, which build.rs
//! generates with cbindgen from this module tree (and the status macros from the table in
//! `crate::status`). The C API and its conventions are described in README.md ("The C API")
//! and in the header itself; the doc comments of the `extern "C"` functions are that header.
//!
//! The only module that touches raw pointers. Every `extern "C"` body runs inside `guard`
//! (status-returning calls) or `guard_or` (the rest), which catch panics so none crosses
//! into C: a panic becomes PEER_ERR_INTERNAL or a neutral value. Handles are opaque tokens,
//! never reused, looked up in a registry, so a freed or forged handle is an error, not UB.
//! Inputs are copied before any output is written (C may pass one buffer as both), and
//! out-params are written only on success. This layer checks pointers and converts; the
//! argument rules (replication range, value size, key pairs) are `Node`'s.
//!
//! Files: `types` (the shared leaf: handle, sizes, a failed call) and `support` (guards, last
//! error, handle registry, pointer helpers) serve the rest; then one file per group of the
//! C API, declared below in the header's order. No file imports from this one, except
//! `tests`, which checks the flat `peer::ffi::*` paths Rust callers use.

// The safety contract of each `unsafe extern "C"` fn is its C doc (which pointers are read or
// written, and how many bytes); a `# Safety` heading would only clutter the header.
#![allow(clippy::missing_safety_doc)]

mod support;
mod types;

// The C API, one file per group. cbindgen writes the functions in the order of these lines,
// which is the header's order; blank lines keep rustfmt from sorting them.
mod peers; // peer_options_init, peer_new, _new_with, _new_external, _free, _port, _uid, _connect, _bootstrap, _forget

mod values; // peer_set, _ref, _bytes_free

mod bags; // peer_bag_publish and the six queries

mod namespaces; // peer_namespace_set and the four reads

mod keys; // peer_keypair, peer_random_uid

mod errors; // peer_strerror, the status symbols, _last_error, _max_value_size, _version

mod stats; // struct peer_stats, peer_stats_init, peer_stats, struct peer_stat, peer_stats_list

mod external; // peer_ext_push, _ext_pop, peer_wire_normalize

mod logging; // peer_log_fn, peer_log_level, peer_log_callback

#[cfg(test)]
mod tests;

// One flat path for Rust callers (the benchmark's drivers use `peer::ffi::peer_new`, ...),
// who reach this module only with the `sim` feature.
#[cfg(any(test, feature = "sim"))]
pub use {
    crate::status::codes::*,
    bags::*,
    errors::*,
    external::*,
    keys::*,
    logging::*,
    namespaces::*,
    peers::*,
    stats::*,
    types::{peer, peer_options, PEER_IP_BUF_LEN, PEER_KEY_LEN, PEER_MAX_VALUE_SIZE, PEER_SIGNATURE_LEN},
    values::*,
};
