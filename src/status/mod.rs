//! libpeer's status codes, made from the one table in `table.rs` (see its head for the
//! rules): the `Status` enum, the `PEER_*` numbers, each status's name (what
//! `peer_strerror` returns and what `Error`'s messages start with) and its symbol (what
//! `peer_status_symbol` returns, so the Scheme libraries never copy numbers).
//! build.rs reads the same table for the header's `PEER_*` macros.

use std::ffi::CStr;

/// `s` (ending in its NUL) as a C string; const, so a NUL inside a table string fails the build.
const fn c_str(s: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(s.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("a status string contains a NUL"),
    }
}

macro_rules! status_table {
    ($($(#[doc = $doc:literal])+ $variant:ident = $code:literal, $c_name:ident, $symbol:literal, $name:literal;)+) => {
        /// A status of the C ABI. Its number is the `#[repr(i32)]` discriminant.
        #[repr(i32)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum Status {
            $($(#[doc = $doc])+ $variant = $code,)+
        }

        /// The status numbers under their C names, as in include/peer.h.
        pub mod codes {
            $($(#[doc = $doc])+ pub const $c_name: std::ffi::c_int = $code;)+
        }

        impl Status {
            /// Every status, in table order.
            pub const ALL: &'static [Status] = &[$(Status::$variant),+];

            /// The status with this number, if there is one.
            pub const fn from_code(code: i32) -> Option<Status> {
                match code {
                    $($code => Some(Status::$variant),)+
                    _ => None,
                }
            }

            /// Its name in the C header (`PEER_ERR_CLOSED`).
            pub const fn c_name(self) -> &'static str {
                match self {
                    $(Status::$variant => stringify!($c_name),)+
                }
            }

            /// Its stable symbol (`"closed"`): lower case, words joined by `-`.
            pub const fn symbol(self) -> &'static str {
                match self {
                    $(Status::$variant => $symbol,)+
                }
            }

            /// `symbol` as a static C string.
            pub const fn symbol_c(self) -> &'static CStr {
                match self {
                    $(Status::$variant => c_str(concat!($symbol, "\0")),)+
                }
            }

            /// Its fixed name (`"peer is closed"`), what `peer_strerror` returns.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Status::$variant => $name,)+
                }
            }

            /// `name` as a static C string.
            pub const fn name_c(self) -> &'static CStr {
                match self {
                    $(Status::$variant => c_str(concat!($name, "\0")),)+
                }
            }
        }
    };
}

include!("table.rs");

impl Status {
    /// Its number, as C callers see it.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// True for the error statuses (the negative numbers).
    pub const fn is_error(self) -> bool {
        self.code() < 0
    }
}

/// What `peer_strerror` returns for a number that is not a status.
pub const UNKNOWN_NAME: &CStr = c"unknown status";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_consistent() {
        let mut seen = (HashSet::new(), HashSet::new(), HashSet::new());
        for &s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), Some(s));
            assert!(seen.0.insert(s.symbol()), "symbol {} twice", s.symbol());
            assert!(seen.1.insert(s.name()), "name {} twice", s.name());
            assert!(seen.2.insert(s.c_name()), "C name {} twice", s.c_name());
            assert_eq!(s.symbol_c().to_str(), Ok(s.symbol()));
            assert_eq!(s.name_c().to_str(), Ok(s.name()));
            let symbol_ok = s.symbol().bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
            assert!(symbol_ok, "symbol {:?} is not lower-case words joined by '-'", s.symbol());
            let prefix = if s.is_error() { "PEER_ERR_" } else { "PEER_" };
            assert!(s.c_name().starts_with(prefix), "{}", s.c_name());
        }
        assert_eq!(Status::from_code(2), None);
        assert_eq!(Status::from_code(i32::MIN), None);
    }

    /// The numbers C programs and the Scheme libraries rely on; never to change.
    #[test]
    fn numbers_are_fixed() {
        let expected = [
            (Status::Ok, 0, "ok"),
            (Status::NotFound, 1, "not-found"),
            (Status::Null, -1, "null"),
            (Status::Invalid, -2, "invalid"),
            (Status::TooLarge, -3, "too-large"),
            (Status::Closed, -4, "closed"),
            (Status::Os, -5, "os"),
            (Status::Unreachable, -6, "unreachable"),
            (Status::NotStored, -7, "not-stored"),
            (Status::KeyMismatch, -8, "key-mismatch"),
            (Status::Internal, -9, "internal"),
            (Status::Malformed, -10, "malformed"),
            (Status::Busy, -11, "busy"),
            (Status::Storage, -12, "storage"),
        ];
        assert_eq!(Status::ALL.len(), expected.len());
        for (s, code, symbol) in expected {
            assert_eq!((s.code(), s.symbol()), (code, symbol), "{s:?}");
        }
        assert_eq!(codes::PEER_OK, 0);
        assert_eq!(codes::PEER_ERR_MALFORMED, -10);
    }
}
