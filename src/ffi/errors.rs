//! Errors and versions: naming a status (peer_strerror), its stable symbol and the list of
//! every status (peer_status_symbol, peer_status_count, peer_status_codes: what the Scheme
//! libraries build their tables from), this thread's last message (peer_last_error), and the
//! library's limits and version. Every status comes from the one table in `crate::status`.

use super::support::{check_out, guard, guard_or, invalid, last_error, last_error_reason};
use crate::consts::{MAX_EXTERNAL_VALUE_SIZE, MAX_VALUE_SIZE};
use crate::status::{Status, UNKNOWN_NAME};
use std::ffi::{c_char, c_int};
use std::ptr;

/// A short static description of a status code ("ok", "not found", "peer is closed", ...;
/// "unknown status" for other numbers). Never NULL; the caller must not free it.
#[no_mangle]
pub extern "C" fn peer_strerror(status: c_int) -> *const c_char {
    guard_or("peer_strerror", Status::Internal.name_c().as_ptr(), || {
        Status::from_code(status).map_or(UNKNOWN_NAME, Status::name_c).as_ptr()
    })
}

/// The stable symbol of a status: "ok", "not-found", "null", "invalid", "too-large",
/// "closed", "os", "unreachable", "not-stored", "key-mismatch", "internal", "malformed"
/// (lower case, words joined by '-'), so that bindings can match statuses by name instead
/// of copying numbers. A status keeps its number and its symbol forever; a new status adds
/// a new number and symbol. Static, never freed by the caller; NULL when `status` is not a
/// status number.
#[no_mangle]
pub extern "C" fn peer_status_symbol(status: c_int) -> *const c_char {
    guard_or("peer_status_symbol", ptr::null(), || {
        Status::from_code(status).map_or(ptr::null(), |s| s.symbol_c().as_ptr())
    })
}

/// The number of statuses libpeer defines (PEER_OK, PEER_NOT_FOUND and every PEER_ERR_*):
/// the capacity peer_status_codes needs. It only grows from one release to the next.
#[no_mangle]
pub extern "C" fn peer_status_count() -> usize {
    guard_or("peer_status_count", Status::ALL.len(), || Status::ALL.len())
}

/// Write every status number libpeer defines to `codes_out` (caller-owned, room for `cap`
/// ints): PEER_OK, PEER_NOT_FOUND, then the errors from -1 down, and their count (that is,
/// peer_status_count()) to `*n_out`. With peer_status_symbol, a binding builds its
/// number <-> symbol table from the library it loaded.
/// Returns 0 ok; -1 codes_out or n_out is NULL; -2 cap is less than peer_status_count()
/// (nothing written).
#[no_mangle]
pub unsafe extern "C" fn peer_status_codes(codes_out: *mut c_int, cap: usize, n_out: *mut usize) -> c_int {
    guard("peer_status_codes", || {
        check_out(codes_out, "codes_out")?;
        check_out(n_out, "n_out")?;
        let all = Status::ALL;
        if cap < all.len() {
            return Err(invalid(format!("cap {cap} is less than the {} statuses (peer_status_count)", all.len())));
        }
        for (i, s) in all.iter().enumerate() {
            // SAFETY: codes_out holds cap >= all.len() ints.
            unsafe { codes_out.add(i).write(s.code()) };
        }
        unsafe { *n_out = all.len() };
        Ok(Status::Ok)
    })
}

/// The message of this thread's last failed call ("" if none yet), saying which function
/// failed and why. Owned by libpeer and valid until this thread's next libpeer call; copy it
/// to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn peer_last_error() -> *const c_char {
    guard_or("peer_last_error", c"".as_ptr(), last_error)
}

/// peer_last_error's message without its leading "function: ": the reason alone ("invalid
/// argument: ...", "" if none yet), for a binding that reports errors under its own
/// procedure's name. Same ownership and lifetime as peer_last_error. Never NULL.
#[no_mangle]
pub extern "C" fn peer_last_error_reason() -> *const c_char {
    guard_or("peer_last_error_reason", c"".as_ptr(), last_error_reason)
}

/// PEER_MAX_EXTERNAL_VALUE_SIZE, for bindings that cannot read macros.
#[no_mangle]
pub extern "C" fn peer_max_external_value_size() -> usize {
    guard_or("peer_max_external_value_size", MAX_EXTERNAL_VALUE_SIZE, || MAX_EXTERNAL_VALUE_SIZE)
}

/// PEER_MAX_VALUE_SIZE, for bindings that cannot read macros.
#[no_mangle]
pub extern "C" fn peer_max_value_size() -> usize {
    guard_or("peer_max_value_size", MAX_VALUE_SIZE, || MAX_VALUE_SIZE)
}

/// The library's version, "MAJOR.MINOR.PATCH" (static, never NULL; do not free). Compare with
/// the PEER_VERSION_* macros to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn peer_version() -> *const c_char {
    let version = concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char;
    guard_or("peer_version", version, || version)
}

#[cfg(test)]
mod tests {
    use super::super::support::last_error_text;
    use super::super::types::{PEER_MAX_EXTERNAL_VALUE_SIZE, PEER_MAX_VALUE_SIZE};
    use super::*;
    use crate::status::codes::{PEER_ERR_INVALID, PEER_ERR_NULL, PEER_OK};
    use std::ffi::CStr;

    fn text(p: *const c_char) -> &'static str {
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn strerror_is_static_and_named() {
        for c in -12..=1 {
            let s = text(peer_strerror(c));
            assert_eq!(s, Status::from_code(c).unwrap().name());
            assert_ne!(s, "unknown status");
        }
        let s = text(peer_strerror(12345));
        assert_eq!(s, "unknown status");
    }

    #[test]
    fn every_status_has_its_symbol() {
        let symbols: Vec<&str> = (-12..=1).map(|c| text(peer_status_symbol(c))).collect();
        let expected = [
            "storage",
            "busy",
            "malformed",
            "internal",
            "key-mismatch",
            "not-stored",
            "unreachable",
            "os",
            "closed",
            "too-large",
            "invalid",
            "null",
            "ok",
            "not-found",
        ];
        assert_eq!(symbols, expected);
        for c in [2, -13, 12345, c_int::MIN, c_int::MAX] {
            assert!(peer_status_symbol(c).is_null(), "{c}");
        }
        // Static: the same pointer every time.
        assert_eq!(peer_status_symbol(-4), peer_status_symbol(-4));
    }

    #[test]
    fn status_codes_lists_every_status() {
        let n = peer_status_count();
        assert_eq!(n, Status::ALL.len());
        let mut codes = vec![99 as c_int; n + 3];
        let mut got = 0usize;
        assert_eq!(unsafe { peer_status_codes(codes.as_mut_ptr(), codes.len(), &mut got) }, PEER_OK);
        assert_eq!(got, n);
        assert_eq!(&codes[..n], &[0, 1, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12]);
        assert_eq!(&codes[n..], &[99, 99, 99], "wrote past the codes");
        for &c in &codes[..n] {
            assert!(!peer_status_symbol(c).is_null(), "{c}");
            assert_ne!(text(peer_strerror(c)), "unknown status");
        }
        let mut exact = vec![0 as c_int; n];
        assert_eq!(unsafe { peer_status_codes(exact.as_mut_ptr(), n, &mut got) }, PEER_OK);
        assert_eq!(exact, codes[..n]);
    }

    #[test]
    fn status_codes_refuses_null_and_short_buffers() {
        let n = peer_status_count();
        let mut codes = vec![99 as c_int; n];
        let mut got = 77usize;
        assert_eq!(unsafe { peer_status_codes(codes.as_mut_ptr(), n - 1, &mut got) }, PEER_ERR_INVALID);
        assert!(last_error_text().starts_with("peer_status_codes: invalid argument: cap"), "{}", last_error_text());
        assert_eq!(unsafe { peer_status_codes(codes.as_mut_ptr(), 0, &mut got) }, PEER_ERR_INVALID);
        assert_eq!(unsafe { peer_status_codes(ptr::null_mut(), n, &mut got) }, PEER_ERR_NULL);
        assert_eq!(unsafe { peer_status_codes(codes.as_mut_ptr(), n, ptr::null_mut()) }, PEER_ERR_NULL);
        assert_eq!((codes, got), (vec![99; n], 77), "out-params written on failure");
    }

    #[test]
    fn version_and_limits() {
        assert_eq!(text(peer_version()), env!("CARGO_PKG_VERSION"));
        assert_eq!(peer_max_value_size(), PEER_MAX_VALUE_SIZE);
        assert_eq!(peer_max_external_value_size(), PEER_MAX_EXTERNAL_VALUE_SIZE);
        assert_eq!(PEER_MAX_EXTERNAL_VALUE_SIZE, 209689);
    }

    #[test]
    fn the_reason_is_the_message_without_the_function() {
        let mut n = 0usize;
        assert_eq!(unsafe { peer_status_codes(ptr::null_mut(), 4, &mut n) }, PEER_ERR_NULL);
        let (all, reason) = (text(peer_last_error()), text(peer_last_error_reason()));
        assert_eq!(all, format!("peer_status_codes: {reason}"));
        assert_eq!(reason, "null pointer argument: `codes_out` is NULL");
    }
}
