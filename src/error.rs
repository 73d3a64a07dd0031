//! One error type for the Rust API, with the fixed status numbers the C ABI returns.
//! Numbers are never reused: a new error takes a new number.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// A NULL pointer where one was required (C ABI only).
    Null,
    /// A bad argument: replication outside 5..=20, an unparsable IP, a wrong length...
    Invalid(String),
    /// A value larger than `MAX_VALUE_SIZE`.
    TooLarge(usize),
    /// The peer was closed.
    Closed,
    /// The operating system refused something (bind, socket, thread).
    Io(String),
    /// No peer could be reached or answered (connect, `_at` uid not found, empty table).
    Unreachable(String),
    /// No peer accepted a store.
    NotStored,
    /// A namespace secret key whose public key is not the one given.
    KeyMismatch,
    /// A bug: a panic caught at the C boundary.
    Internal(String),
    /// A message handed in by the program's transport could not be parsed.
    Malformed(String),
}

/// Status codes of the C ABI (SPEC 6): 0 ok, 1 not found, negative errors.
pub const PEER_OK: i32 = 0;
pub const PEER_NOT_FOUND: i32 = 1;

impl Error {
    pub fn code(&self) -> i32 {
        match self {
            Error::Null => -1,
            Error::Invalid(_) => -2,
            Error::TooLarge(_) => -3,
            Error::Closed => -4,
            Error::Io(_) => -5,
            Error::Unreachable(_) => -6,
            Error::NotStored => -7,
            Error::KeyMismatch => -8,
            Error::Internal(_) => -9,
            Error::Malformed(_) => -10,
        }
    }
}

/// The fixed name of a status code, for `peer_strerror`.
pub fn status_name(code: i32) -> &'static str {
    match code {
        0 => "ok",
        1 => "not found",
        -1 => "null pointer argument",
        -2 => "invalid argument",
        -3 => "value too large",
        -4 => "peer is closed",
        -5 => "operating system error",
        -6 => "no peer could be reached",
        -7 => "no peer accepted the store",
        -8 => "secret key does not match public key",
        -9 => "internal error",
        -10 => "malformed message",
        _ => "unknown status",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Null => write!(f, "null pointer argument"),
            Error::Invalid(m) => write!(f, "invalid argument: {m}"),
            Error::TooLarge(n) => write!(f, "value too large: {n} bytes, maximum {}", crate::consts::MAX_VALUE_SIZE),
            Error::Closed => write!(f, "peer is closed"),
            Error::Io(m) => write!(f, "operating system error: {m}"),
            Error::Unreachable(m) => write!(f, "no peer could be reached: {m}"),
            Error::NotStored => write!(f, "no peer accepted the store"),
            Error::KeyMismatch => write!(f, "secret key does not match public key"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::Malformed(m) => write!(f, "malformed message: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
