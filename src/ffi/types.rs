//! What every part of the C boundary shares: the handle type, the size constants of the
//! header, and a failed call (`Fail`, `Outcome`). A leaf: it imports nothing from `ffi`.

use crate::consts::{ID_LEN, MAX_VALUE_SIZE, SIGNATURE_LEN};
use crate::error::Error;
use crate::status::Status;

/// Largest value peer_set accepts, in bytes.
pub const PEER_MAX_VALUE_SIZE: usize = 262138;
/// Length of a uid, key, public key, secret key and bag value, in bytes.
pub const PEER_KEY_LEN: usize = 32;
/// Length of a namespace signature, in bytes.
pub const PEER_SIGNATURE_LEN: usize = 64;
/// Size of the buffer peer_ext_pop writes the sender's IP text into.
pub const PEER_IP_BUF_LEN: usize = 64;

// The header's numbers are literals (cbindgen copies them); these keep them true.
const _: () = assert!(PEER_MAX_VALUE_SIZE == MAX_VALUE_SIZE);
const _: () = assert!(PEER_KEY_LEN == ID_LEN);
const _: () = assert!(PEER_SIGNATURE_LEN == SIGNATURE_LEN);

/// A peer handle: an opaque token, never dereferenced and never reused. Create one with
/// peer_new or peer_new_external, release it with peer_free.
#[allow(non_camel_case_types)]
pub struct peer {
    _opaque: [u8; 0],
}

/// A failed call: its status and the message peer_last_error will return.
pub(super) struct Fail {
    pub(super) status: Status,
    pub(super) msg: String,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail { status: e.status(), msg: e.to_string() }
    }
}

/// What a status-returning body gives `guard`: `Ok` (0) or `NotFound` (1), or a failure.
pub(super) type Outcome = Result<Status, Fail>;
