//! The machinery behind the C boundary in `ffi.rs`: failures and the panic guard, this
//! thread's last-error message, the handle registry, and the pointer and argument helpers.
//! Nothing here is part of the C API, so cbindgen emits nothing from this file.

use super::{peer, peer_stats, PEER_ERR_CLOSED, PEER_ERR_INTERNAL, PEER_ERR_NULL};
use crate::consts::{MAX_REPLICATION, MIN_REPLICATION};
use crate::error::Error;
use crate::node::{Node, Stats};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// The C view of a peer's counters (peer_stats).
impl From<Stats> for peer_stats {
    fn from(s: Stats) -> Self {
        peer_stats {
            contacts: s.contacts as u64,
            values: s.values as u64,
            value_bytes: s.value_bytes as u64,
            bag_entries: s.bag_entries as u64,
            namespace_records: s.namespace_records as u64,
            requests_sent: s.requests_sent,
            requests_failed: s.requests_failed,
            requests_received: s.requests_received,
            open_connections: s.open_connections as u64,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Failures, the panic guard, the last-error message, the handle registry.

/// A failed call: its status and the message peer_last_error will return.
pub(super) struct Fail {
    pub(super) code: c_int,
    pub(super) msg: String,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail { code: e.code(), msg: e.to_string() }
    }
}

pub(super) fn null(arg: &str) -> Fail {
    Fail { code: PEER_ERR_NULL, msg: format!("null pointer argument: `{arg}` is NULL") }
}

pub(super) fn invalid(msg: String) -> Fail {
    Error::Invalid(msg).into()
}

pub(super) type Status = Result<c_int, Fail>;

thread_local! {
    pub(super) static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(super) fn set_last_error(func: &str, msg: &str) {
    let text = format!("{func}: {msg}").replace('\0', "\\0");
    let c = CString::new(text).unwrap_or_default();
    // try_with: during thread teardown the slot may be gone; losing the message is fine.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = c);
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// A payload's own drop could panic too; that second panic must not reach C either.
fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Run a status-returning body: its Err becomes its status plus a last-error message, a
/// panic becomes -9.
pub(super) fn guard(func: &'static str, body: impl FnOnce() -> Status) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(code)) => code,
        Ok(Err(fail)) => {
            set_last_error(func, &fail.msg);
            fail.code
        }
        Err(payload) => {
            set_last_error(func, &format!("internal error: panic: {}", panic_text(&*payload)));
            drop_payload(payload);
            PEER_ERR_INTERNAL
        }
    }
}

/// Run a body with no status: a panic yields `fallback` and a last-error message.
pub(super) fn guard_or<T>(func: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(func, &format!("internal error: panic: {}", panic_text(&*payload)));
            drop_payload(payload);
            fallback
        }
    }
}

/// Live handles. A token is a counter times 16 (so it looks like an aligned pointer to
/// tools that care); the counter only grows, so a freed token is never handed out again.
pub(super) static HANDLES: LazyLock<Mutex<HashMap<usize, Arc<Node>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

pub(super) fn register(node: Node) -> *mut peer {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed) << 4;
    HANDLES.lock().insert(token, Arc::new(node));
    token as *mut peer
}

/// The node behind a handle. The lock is held only for the lookup: calls run unlocked, so
/// many threads can block in calls on one handle while another frees it.
pub(super) fn node(p: *const peer) -> Result<Arc<Node>, Fail> {
    if p.is_null() {
        return Err(null("p"));
    }
    HANDLES
        .lock()
        .get(&(p as usize))
        .cloned()
        .ok_or_else(|| Fail { code: PEER_ERR_CLOSED, msg: "peer is closed (freed or unknown handle)".into() })
}

// Pointer helpers: a NULL check is one line at each use.

/// Copy `N` bytes from `p`. Safety: `p` is NULL or points to `N` readable bytes.
pub(super) unsafe fn read_arr<const N: usize>(p: *const u8, arg: &str) -> Result<[u8; N], Fail> {
    if p.is_null() {
        return Err(null(arg));
    }
    let mut a = [0u8; N];
    // SAFETY: the caller guarantees N readable bytes; `a` is ours.
    unsafe { ptr::copy_nonoverlapping(p, a.as_mut_ptr(), N) };
    Ok(a)
}

/// Copy `bytes` to `p`. Safety: `p` is non-NULL (checked earlier) with room for them.
pub(super) unsafe fn write_bytes(p: *mut u8, bytes: &[u8]) {
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
}

pub(super) fn check_out<T>(p: *mut T, arg: &str) -> Result<(), Fail> {
    if p.is_null() {
        Err(null(arg))
    } else {
        Ok(())
    }
}

/// Parse a NUL-terminated IP address. Safety: `p` is NULL or a NUL-terminated string.
pub(super) unsafe fn read_ip(p: *const c_char, arg: &str) -> Result<IpAddr, Fail> {
    if p.is_null() {
        return Err(null(arg));
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| invalid(format!("`{arg}` is not UTF-8")))?;
    s.parse::<IpAddr>().map_err(|_| invalid(format!("`{arg}` is not an IP address: {s:?}")))
}

/// A byte range from C; NULL is accepted for an empty range. Safety: `p` is NULL or points
/// to `len` readable bytes that stay valid and unchanged for the borrow.
pub(super) unsafe fn read_slice<'a>(p: *const u8, len: usize, arg: &str) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(arg));
    }
    // SAFETY: see above.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Hand a buffer to C: it owns it until it passes `(ptr, len)` back to peer_bytes_free.
pub(super) fn leak_bytes(v: Vec<u8>) -> (*mut u8, usize) {
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b) as *mut u8, len)
}

pub(super) fn check_replication(r: u32) -> Result<(), Fail> {
    if (MIN_REPLICATION..=MAX_REPLICATION).contains(&r) {
        Ok(())
    } else {
        Err(invalid(format!("replication {r} is outside {MIN_REPLICATION}..{MAX_REPLICATION}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::peer_last_error;

    fn last_error() -> String {
        unsafe { CStr::from_ptr(peer_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_internal_error() {
        let code = guard("test_fn", || panic!("boom"));
        assert_eq!(code, PEER_ERR_INTERNAL);
        assert!(last_error().contains("boom"), "{}", last_error());
        assert_eq!(guard_or("test_fn", 42u16, || panic!("bang")), 42);
    }
}
