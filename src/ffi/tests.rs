//! Tests of the C boundary as a whole: the header is fresh, and the PEER_* numbers that
//! Rust users of `peer::ffi` see agree with the errors.

use super::*;
use crate::error::Error;

#[test]
fn status_constants_match_error_codes() {
    let pairs = [
        (Error::Null, PEER_ERR_NULL),
        (Error::Invalid(String::new()), PEER_ERR_INVALID),
        (Error::TooLarge(0, 0), PEER_ERR_TOO_LARGE),
        (Error::Closed, PEER_ERR_CLOSED),
        (Error::Io(String::new()), PEER_ERR_OS),
        (Error::Unreachable(String::new()), PEER_ERR_UNREACHABLE),
        (Error::NotStored, PEER_ERR_NOT_STORED),
        (Error::KeyMismatch, PEER_ERR_KEY_MISMATCH),
        (Error::Internal(String::new()), PEER_ERR_INTERNAL),
        (Error::Malformed(String::new()), PEER_ERR_MALFORMED),
    ];
    for (e, c) in pairs {
        assert_eq!(e.code(), c, "{e:?}");
    }
    assert_eq!((PEER_OK, PEER_NOT_FOUND), (0, 1));
}

/// Every status of the table is a `#define` in the header, with its number.
#[test]
fn header_defines_every_status() {
    let header = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/include/peer.h"));
    for s in crate::status::Status::ALL {
        let line = format!("\n#define {} {}\n", s.c_name(), s.code());
        assert!(header.contains(&line), "include/peer.h lacks {line:?}");
    }
}

/// The checked-in header is what build.rs generates. build.rs rewrites include/peer.h on
/// each build unless PEER_HEADER_NO_WRITE is set, so run with that set
/// (`make check-header-fresh`) for this test to catch a stale committed header.
#[test]
fn header_is_fresh() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/peer.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/peer.h");
    let checked_in = std::fs::read_to_string(path).expect("include/peer.h");
    assert!(generated == checked_in, "include/peer.h is stale: rebuild without PEER_HEADER_NO_WRITE and commit it");
}
