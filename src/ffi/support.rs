//! The machinery behind the C boundary: the panic guards, this thread's last-error message,
//! the handle registry, and the pointer helpers that make a NULL check one line.
//! Nothing here is part of the C API, so cbindgen emits nothing from this file.

use super::types::{peer, Fail, Outcome};
use crate::error::Error;
use crate::node::Node;
use crate::status::Status;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

// ---------------------------------------------------------------------------------------
// Failures

pub(super) fn null(arg: &str) -> Fail {
    Fail { status: Status::Null, msg: format!("{}: `{arg}` is NULL", Status::Null.name()) }
}

pub(super) fn invalid(msg: String) -> Fail {
    Error::Invalid(msg).into()
}

/// Zero the caller's growable struct at `p` of `size` bytes (its own sizeof; ours is
/// `ours`) and set its leading `size` field to `size`: bytes past the caller's struct are
/// never written, whichever side is newer.
///
/// # Safety
/// `p` is non-NULL and points to `size` writable bytes.
pub(super) unsafe fn init_sized(p: *mut u8, size: usize, ours: usize) -> Result<(), String> {
    if size < std::mem::size_of::<usize>() {
        return Err(format!("size {size} is smaller than the struct's size field"));
    }
    // SAFETY: the caller's struct has `size` bytes; we write min(size, ours) of them, and
    // the first field of every version is a size_t.
    unsafe {
        ptr::write_bytes(p, 0, size.min(ours));
        p.cast::<usize>().write_unaligned(size);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The last-error message

/// This thread's last message, "function: reason", and where its reason starts.
struct LastError {
    text: CString,
    reason_at: usize,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError { text: CString::default(), reason_at: 0 });
}

pub(super) fn set_last_error(func: &str, msg: &str) {
    let text = format!("{func}: {msg}").replace('\0', "\\0");
    let text = CString::new(text).unwrap_or_default();
    let reason_at = func.len() + 2;
    // try_with: during thread teardown the slot may be gone; losing the message is fine.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = LastError { text, reason_at });
}

/// This thread's last message, valid until set_last_error replaces it (the CString's heap
/// buffer stays put until then).
pub(super) fn last_error() -> *const c_char {
    LAST_ERROR.try_with(|slot| slot.borrow().text.as_ptr()).unwrap_or(c"".as_ptr())
}

/// The same message without its leading "function: ": what a binding shows under its own
/// procedure's name. Same lifetime as `last_error`.
pub(super) fn last_error_reason() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| {
            let e = slot.borrow();
            let len = e.text.as_bytes().len();
            // SAFETY: reason_at <= len (the text starts with "func: ", NULs in func aside,
            // and an empty text has reason_at 0), so this stays inside the NUL-terminated text.
            unsafe { e.text.as_ptr().add(e.reason_at.min(len)) }
        })
        .unwrap_or(c"".as_ptr())
}

#[cfg(test)]
pub(super) fn last_error_text() -> String {
    unsafe { CStr::from_ptr(last_error()) }.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------
// The panic guards

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
/// panic becomes PEER_ERR_INTERNAL.
pub(super) fn guard(func: &'static str, body: impl FnOnce() -> Outcome) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status.code(),
        Ok(Err(fail)) => {
            set_last_error(func, &fail.msg);
            fail.status.code()
        }
        Err(payload) => {
            set_last_error(func, &format!("{}: panic: {}", Status::Internal.name(), panic_text(&*payload)));
            drop_payload(payload);
            Status::Internal.code()
        }
    }
}

/// Run a body with no status: a panic yields `fallback` and a last-error message.
pub(super) fn guard_or<T>(func: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(func, &format!("{}: panic: {}", Status::Internal.name(), panic_text(&*payload)));
            drop_payload(payload);
            fallback
        }
    }
}

// ---------------------------------------------------------------------------------------
// The handle registry

/// Live handles. A token is a counter times 16 (so it looks like an aligned pointer to
/// tools that care); the counter only grows, so a freed token is never handed out again.
static HANDLES: LazyLock<Mutex<HashMap<usize, Arc<Node>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

pub(super) fn register(node: Node) -> *mut peer {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed) << 4;
    HANDLES.lock().insert(token, Arc::new(node));
    token as *mut peer
}

/// Take a handle out of the registry; None when it is not (or no longer) there.
pub(super) fn unregister(p: *mut peer) -> Option<Arc<Node>> {
    HANDLES.lock().remove(&(p as usize))
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
        .ok_or_else(|| Fail { status: Status::Closed, msg: "peer is closed (freed or unknown handle)".into() })
}

// ---------------------------------------------------------------------------------------
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

/// A NUL-terminated UTF-8 text: an IP address or a host name. Safety: `p` is NULL or a
/// NUL-terminated string that outlives the borrow.
pub(super) unsafe fn read_host<'a>(p: *const c_char, arg: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(null(arg));
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| invalid(format!("`{arg}` is not UTF-8")))
}

/// The IP a NUL-terminated address text or host name names (`node::bind_ip`). Safety: as
/// for read_host.
pub(super) unsafe fn read_ip(p: *const c_char, arg: &str) -> Result<IpAddr, Fail> {
    Ok(crate::node::bind_ip(unsafe { read_host(p, arg) }?)?)
}

/// Write an IP address's text, NUL-terminated, to a caller's buffer of PEER_IP_BUF_LEN bytes.
/// Safety: `out` is non-NULL (checked earlier) with room for PEER_IP_BUF_LEN bytes.
pub(super) unsafe fn write_ip(out: *mut c_char, ip: IpAddr) -> Result<(), Fail> {
    let mut text = ip.to_string().into_bytes();
    // An IPv6 text is at most 45 bytes; the check keeps a future change from overflowing.
    if text.len() >= super::types::PEER_IP_BUF_LEN {
        return Err(Fail { status: Status::Internal, msg: format!("address text too long: {ip}") });
    }
    text.push(0);
    unsafe { write_bytes(out as *mut u8, &text) };
    Ok(())
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

/// Take back a buffer leak_bytes handed out. Safety: `(bytes, len)` came from leak_bytes
/// and has not been taken back before.
pub(super) unsafe fn free_bytes(bytes: *mut u8, len: usize) {
    // SAFETY: see above.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(bytes, len)) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_internal_error() {
        let code = guard("test_fn", || panic!("boom"));
        assert_eq!(code, Status::Internal.code());
        assert!(last_error_text().contains("boom"), "{}", last_error_text());
        assert_eq!(guard_or("test_fn", 42u16, || panic!("bang")), 42);
    }

    #[test]
    fn failures_carry_their_status_and_message() {
        assert_eq!(guard("test_fn", || Err(null("x"))), Status::Null.code());
        assert_eq!(last_error_text(), "test_fn: null pointer argument: `x` is NULL");
        assert_eq!(guard("test_fn", || Ok(Status::NotFound)), Status::NotFound.code());
        let (b, len) = leak_bytes(vec![1, 2, 3]);
        unsafe { free_bytes(b, len) };
    }
}
