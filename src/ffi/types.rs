//! What every part of the C boundary shares: the handle type, the size constants of the
//! header, and a failed call (`Fail`, `Outcome`). A leaf: it imports nothing from `ffi`.

use crate::consts::{ID_LEN, MAX_EXTERNAL_VALUE_SIZE, MAX_VALUE_SIZE, SIGNATURE_LEN};
use crate::error::Error;
use crate::status::Status;

/// Largest value peer_set accepts, in bytes.
pub const PEER_MAX_VALUE_SIZE: usize = 262138;
/// Largest value peer_set accepts on a peer made by peer_new_external, in bytes: lower, so
/// that every message of such a peer fits 1 MiB inside the program's envelope, as any
/// Scheme writes it.
pub const PEER_MAX_EXTERNAL_VALUE_SIZE: usize = 209689;
/// Length of a uid, key, public key, secret key and bag value, in bytes.
pub const PEER_KEY_LEN: usize = 32;
/// Length of a namespace signature, in bytes.
pub const PEER_SIGNATURE_LEN: usize = 64;
/// Size of the buffer peer_ext_pop and peer_address write an IP text into.
pub const PEER_IP_BUF_LEN: usize = 64;

// The header's numbers are literals (cbindgen copies them); these keep them true.
const _: () = assert!(PEER_MAX_VALUE_SIZE == MAX_VALUE_SIZE);
const _: () = assert!(PEER_MAX_EXTERNAL_VALUE_SIZE == MAX_EXTERNAL_VALUE_SIZE);
const _: () = assert!(PEER_KEY_LEN == ID_LEN);
const _: () = assert!(PEER_SIGNATURE_LEN == SIGNATURE_LEN);

/// A peer handle: an opaque token, never dereferenced and never reused. Create one with
/// peer_new or peer_new_external, release it with peer_free.
#[allow(non_camel_case_types)]
pub struct peer {
    _opaque: [u8; 0],
}

/// How peer_new_with makes a peer. Fill it with peer_options_init, then set what you need.
/// Zero fields take the default. Fields added in later versions go at the end: `size` (set
/// by peer_options_init to sizeof(struct peer_options)) tells libpeer how many the caller's
/// struct has, and the fields past it take their defaults.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct peer_options {
    /// sizeof(struct peer_options), as the caller was compiled: set by peer_options_init.
    pub size: usize,
    /// How many of the nearest peers hold each record: 5..20; 0: the default, 5.
    pub replication: u32,
    /// NUL-terminated path of the peer's data directory (created if missing; read, not
    /// kept); NULL: nothing is persisted.
    pub data_dir: *const std::ffi::c_char,
    /// How often the peer republishes what it stored, in seconds; 0: the default, 3600.
    pub republish_s: u32,
    /// How long values and namespace records live after their publisher's last store, in
    /// seconds; 0: the default, 86400.
    pub expire_s: u32,
    /// The address limits (SECURITY.md: contacts, holders, stored records and connections
    /// per IP address and per /24 or /48): 0, the default, counts every address but
    /// loopback ones (a local test network on one address works); 1 counts loopback too
    /// (a test network spread over 127.x.y.z); 2 turns the limits off. Other values: -2.
    pub address_limits: u32,
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
