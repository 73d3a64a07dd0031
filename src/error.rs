//! One error type for the Rust API. Each error is one status of the table in `status`,
//! which gives its number for the C ABI and the name its message starts with.

use crate::status::Status;
use std::fmt;

/// Why a call failed. Each kind is one status of the C ABI (`status()`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// A NULL pointer where one was required (C ABI only).
    Null,
    /// A bad argument: replication outside 5..=20, an unparsable IP, a wrong length...
    Invalid(String),
    /// A value of this many bytes, larger than the peer's maximum (`MAX_VALUE_SIZE`, or
    /// `MAX_EXTERNAL_VALUE_SIZE` on the program-supplied transport), the second field.
    TooLarge(usize, usize),
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
    /// The data directory is held by another live peer.
    Busy(String),
    /// The data directory could not be read or written.
    Storage(String),
}

impl Error {
    /// The status a C caller gets for this error.
    pub fn status(&self) -> Status {
        match self {
            Error::Null => Status::Null,
            Error::Invalid(_) => Status::Invalid,
            Error::TooLarge(..) => Status::TooLarge,
            Error::Closed => Status::Closed,
            Error::Io(_) => Status::Os,
            Error::Unreachable(_) => Status::Unreachable,
            Error::NotStored => Status::NotStored,
            Error::KeyMismatch => Status::KeyMismatch,
            Error::Internal(_) => Status::Internal,
            Error::Malformed(_) => Status::Malformed,
            Error::Busy(_) => Status::Busy,
            Error::Storage(_) => Status::Storage,
        }
    }

    /// The status number a C caller gets for this error.
    pub fn code(&self) -> i32 {
        self.status().code()
    }
}

/// "status name" or "status name: detail".
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.status().name();
        match self {
            Error::Null | Error::Closed | Error::NotStored | Error::KeyMismatch => f.write_str(name),
            Error::TooLarge(n, max) => write!(f, "{name}: {n} bytes, maximum {max}"),
            Error::Invalid(m)
            | Error::Io(m)
            | Error::Unreachable(m)
            | Error::Internal(m)
            | Error::Malformed(m)
            | Error::Busy(m)
            | Error::Storage(m) => {
                write!(f, "{name}: {m}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The result of a libpeer call.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages C and Scheme programs see (peer_last_error) stay word for word.
    #[test]
    fn messages_are_unchanged() {
        let max = crate::consts::MAX_VALUE_SIZE;
        let cases = [
            (Error::Null, "null pointer argument".to_string()),
            (Error::Invalid("x".into()), "invalid argument: x".into()),
            (Error::TooLarge(7, max), format!("value too large: 7 bytes, maximum {max}")),
            (Error::Closed, "peer is closed".into()),
            (Error::Io("x".into()), "operating system error: x".into()),
            (Error::Unreachable("x".into()), "no peer could be reached: x".into()),
            (Error::NotStored, "no peer accepted the store".into()),
            (Error::KeyMismatch, "secret key does not match public key".into()),
            (Error::Internal("x".into()), "internal error: x".into()),
            (Error::Malformed("x".into()), "malformed message: x".into()),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn codes_come_from_the_table() {
        assert_eq!(Error::Null.code(), -1);
        assert_eq!(Error::Io(String::new()).code(), Status::Os.code());
        assert_eq!(Error::Malformed(String::new()).code(), -10);
    }
}
