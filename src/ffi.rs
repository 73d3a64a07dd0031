//! The C boundary (SPEC 6, `include/peer.h`, generated from this file by build.rs + cbindgen).
//!
//! The only module that touches raw pointers. Every `extern "C"` body runs inside `guard`
//! (status-returning calls) or `guard_or` (the rest), which catch panics so none crosses
//! into C: a panic becomes status -9 or a neutral value. Handles are opaque tokens, never
//! reused, looked up in a registry, so a freed or forged handle is an error, not UB.
//! Inputs are copied before any output is written (C may pass one buffer as both), and
//! out-params are written only on success. The doc comments below are the C documentation;
//! the machinery (guards, last error, handle registry, pointer helpers) is in `support`.

// The safety contract of each `unsafe extern "C"` fn is its C doc (which pointers are read or
// written, and how many bytes); a `# Safety` heading would only clutter the header.
#![allow(clippy::missing_safety_doc)]

mod support;

use crate::consts::{ID_LEN, MAX_VALUE_SIZE, SIGNATURE_LEN};
use crate::error::{status_name, Error};
use crate::id::Id;
use crate::node::Node;
use crate::wire::BagKind;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CString};
use std::ptr;
use std::sync::LazyLock;
use std::time::Duration;
use support::{
    check_out, check_replication, guard, guard_or, invalid, leak_bytes, node, null, read_arr, read_ip, read_slice,
    register, set_last_error, write_bytes, Fail, Status, HANDLES, LAST_ERROR,
};

/// Largest value peer_set accepts, in bytes.
pub const PEER_MAX_VALUE_SIZE: usize = 262140;
/// Length of a uid, key, public key, secret key and bag value, in bytes.
pub const PEER_KEY_LEN: usize = 32;
/// Length of a namespace signature, in bytes.
pub const PEER_SIGNATURE_LEN: usize = 64;
/// Size of the buffer peer_ext_pop writes the sender's IP text into.
pub const PEER_IP_BUF_LEN: usize = 64;

/// Status: success.
pub const PEER_OK: c_int = 0;
/// Status: the key, record or value was not found (not an error).
pub const PEER_NOT_FOUND: c_int = 1;
/// Status: a required pointer argument was NULL.
pub const PEER_ERR_NULL: c_int = -1;
/// Status: an invalid argument (replication outside 5..20, unparsable IP address, ...).
pub const PEER_ERR_INVALID: c_int = -2;
/// Status: a value longer than PEER_MAX_VALUE_SIZE.
pub const PEER_ERR_TOO_LARGE: c_int = -3;
/// Status: the peer handle is freed, unknown, or its peer has stopped.
pub const PEER_ERR_CLOSED: c_int = -4;
/// Status: the operating system refused something (bind, socket, thread).
pub const PEER_ERR_OS: c_int = -5;
/// Status: no peer could be reached (connect failed, `_at` uid not found, empty table).
pub const PEER_ERR_UNREACHABLE: c_int = -6;
/// Status: no peer accepted the store.
pub const PEER_ERR_NOT_STORED: c_int = -7;
/// Status: the namespace secret key does not belong to the given public key.
pub const PEER_ERR_KEY_MISMATCH: c_int = -8;
/// Status: an internal error (a bug in libpeer; the call had no effect on the caller's memory).
pub const PEER_ERR_INTERNAL: c_int = -9;
/// Status: a message handed in (peer_ext_push, peer_wire_normalize) is malformed.
pub const PEER_ERR_MALFORMED: c_int = -10;

const _: () = assert!(PEER_MAX_VALUE_SIZE == MAX_VALUE_SIZE);
const _: () = assert!(PEER_KEY_LEN == ID_LEN);
const _: () = assert!(PEER_SIGNATURE_LEN == SIGNATURE_LEN);
const _: () = assert!(PEER_OK == crate::error::PEER_OK && PEER_NOT_FOUND == crate::error::PEER_NOT_FOUND);

/// A peer handle: an opaque token, never dereferenced and never reused. Create one with
/// peer_new or peer_new_external, release it with peer_free.
#[allow(non_camel_case_types)]
pub struct peer {
    _opaque: [u8; 0],
}

/// A peer's counters (peer_stats).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct peer_stats {
    /// Contacts in the routing table.
    pub contacts: u64,
    /// Values stored here, and their total bytes.
    pub values: u64,
    pub value_bytes: u64,
    /// Bag entries stored here over all keys.
    pub bag_entries: u64,
    /// Namespace records stored here.
    pub namespace_records: u64,
    /// Requests this peer sent, those that failed, and those it received.
    pub requests_sent: u64,
    pub requests_failed: u64,
    pub requests_received: u64,
    /// Open connections, both directions.
    pub open_connections: u64,
}

// ---------------------------------------------------------------------------------------
// Peers

unsafe fn new_peer(
    external: bool,
    uid: *const u8,
    ip: *const c_char,
    port: u16,
    replication: u32,
    out: *mut *mut peer,
) -> Status {
    let uid = Id(unsafe { read_arr::<32>(uid, "uid") }?);
    let ip = unsafe { read_ip(ip, "ip") }?;
    check_out(out, "out")?;
    check_replication(replication)?;
    let node =
        if external { Node::new_external(uid, ip, port, replication)? } else { Node::new(uid, ip, port, replication)? };
    // SAFETY: `out` checked non-NULL; the caller gives a writable `struct peer *` slot.
    unsafe { *out = register(node) };
    Ok(PEER_OK)
}

/// Create a peer on the built-in encrypted TCP transport, listening on `ip`:`port`.
///
/// `uid`: 32 bytes, read. `ip`: NUL-terminated IPv4 or IPv6 address text, read. `port` 0
/// picks an ephemeral port (see peer_port). `replication`: 5..20 (5 is the usual value).
/// On success `*out` receives a new handle that the caller owns and releases with peer_free;
/// on failure `*out` is untouched.
/// Returns 0 ok; -1 uid, ip or out is NULL; -2 replication out of range or ip not an IP
/// address; -5 the OS refused (address in use, ...); -9 internal error.
#[no_mangle]
pub unsafe extern "C" fn peer_new(
    uid: *const u8,
    ip: *const c_char,
    port: u16,
    replication: u32,
    out: *mut *mut peer,
) -> c_int {
    guard("peer_new", || unsafe { new_peer(false, uid, ip, port, replication, out) })
}

/// Create a peer on a program-supplied transport: it opens no sockets. `ip`:`port` is its
/// address on the program's network. The program moves its messages with peer_ext_pop and
/// peer_ext_push; blocking calls on it complete only while someone does.
///
/// Arguments, ownership and statuses as for peer_new (no -5 for a bind).
#[no_mangle]
pub unsafe extern "C" fn peer_new_external(
    uid: *const u8,
    ip: *const c_char,
    port: u16,
    replication: u32,
    out: *mut *mut peer,
) -> c_int {
    guard("peer_new_external", || unsafe { new_peer(true, uid, ip, port, replication, out) })
}

/// Stop a peer, join its thread and release its handle. NULL is a no-op, and so is a handle
/// already freed. Calls blocked on this handle in other threads return -4; later calls on it
/// return -4 too (handles are never reused).
#[no_mangle]
pub extern "C" fn peer_free(p: *mut peer) {
    guard_or("peer_free", (), || {
        if p.is_null() {
            return;
        }
        // Unlock before close(): joining the peer's thread may take a while.
        let node = HANDLES.lock().remove(&(p as usize));
        if let Some(node) = node {
            node.close();
        }
    })
}

/// The port the peer listens on (the bound port when it was created with port 0; the given
/// port for an external peer). 0 when `p` is NULL or freed.
#[no_mangle]
pub extern "C" fn peer_port(p: *const peer) -> u16 {
    guard_or("peer_port", 0, || node(p).map(|n| n.port()).unwrap_or(0))
}

/// Copy the peer's 32-byte uid into `uid_out` (caller-owned, 32 bytes).
/// Returns 0 ok; -1 p or uid_out is NULL; -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_uid(p: *const peer, uid_out: *mut u8) -> c_int {
    guard("peer_uid", || {
        let n = node(p)?;
        check_out(uid_out, "uid_out")?;
        unsafe { write_bytes(uid_out, &n.uid().0) };
        Ok(PEER_OK)
    })
}

/// Greet the peer at `ip`:`port` (`ip` NUL-terminated text) and add it to the routing table.
/// Returns 0 ok; -1 p or ip is NULL; -2 ip is not an IP address; -4 peer is closed;
/// -6 nobody answered there.
#[no_mangle]
pub unsafe extern "C" fn peer_connect(p: *mut peer, ip: *const c_char, port: u16) -> c_int {
    guard("peer_connect", || {
        let n = node(p)?;
        let ip = unsafe { read_ip(ip, "ip") }?;
        n.connect(ip, port)?;
        Ok(PEER_OK)
    })
}

/// Fill the routing table by looking up the peer's own uid through the peers it knows.
/// Returns 0 ok; -1 p is NULL; -4 peer is closed; -6 no known peer answered.
#[no_mangle]
pub extern "C" fn peer_bootstrap(p: *mut peer) -> c_int {
    guard("peer_bootstrap", || {
        node(p)?.bootstrap()?;
        Ok(PEER_OK)
    })
}

// ---------------------------------------------------------------------------------------
// Values

/// Store the `len` bytes at `value` (read; NULL allowed when len is 0) at the peers nearest
/// their SHA-256, and write that 32-byte key to `key_out` (caller-owned, 32 bytes).
/// Returns 0 ok; -1 p, value or key_out is NULL; -3 len > PEER_MAX_VALUE_SIZE (checked before
/// any network traffic); -4 peer is closed; -6 no peer reachable; -7 no peer accepted it.
#[no_mangle]
pub unsafe extern "C" fn peer_set(p: *mut peer, value: *const u8, len: usize, key_out: *mut u8) -> c_int {
    guard("peer_set", || {
        let n = node(p)?;
        let value = unsafe { read_slice(value, len, "value") }?;
        check_out(key_out, "key_out")?;
        if len > MAX_VALUE_SIZE {
            return Err(Error::TooLarge(len).into());
        }
        let key = n.set(value)?;
        unsafe { write_bytes(key_out, &key.0) };
        Ok(PEER_OK)
    })
}

/// Fetch the value whose SHA-256 is the 32-byte `key` (read). On 0, `*value_out` receives a
/// buffer allocated by libpeer holding `*len_out` bytes; the caller owns it and releases it
/// with peer_bytes_free(*value_out, *len_out). On any other status nothing is written.
/// Returns 0 found; 1 no peer has it; -1 p, key, value_out or len_out is NULL; -4 peer is
/// closed; -6 no peer reachable.
#[no_mangle]
pub unsafe extern "C" fn peer_ref(p: *mut peer, key: *const u8, value_out: *mut *mut u8, len_out: *mut usize) -> c_int {
    guard("peer_ref", || {
        let n = node(p)?;
        let key = Id(unsafe { read_arr::<32>(key, "key") }?);
        check_out(value_out, "value_out")?;
        check_out(len_out, "len_out")?;
        match n.get(&key)? {
            None => Ok(PEER_NOT_FOUND),
            Some(v) => {
                let (b, len) = leak_bytes(v);
                unsafe {
                    *value_out = b;
                    *len_out = len;
                }
                Ok(PEER_OK)
            }
        }
    })
}

/// Release a buffer that libpeer allocated (peer_ref, peer_ext_pop, peer_wire_normalize),
/// passing the length that call documents. NULL is a no-op. Never pass memory from
/// elsewhere, a different length, or the same buffer twice.
#[no_mangle]
pub unsafe extern "C" fn peer_bytes_free(bytes: *mut u8, len: usize) {
    guard_or("peer_bytes_free", (), || {
        if bytes.is_null() {
            return;
        }
        // SAFETY: (bytes, len) came from leak_bytes, per this function's contract.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(bytes, len)) });
    })
}

// ---------------------------------------------------------------------------------------
// Bags

/// Add the 32-byte `value` to the bag `key` (both read) at the key's nearest peers.
/// Returns 0 ok; -1 p, key or value is NULL; -4 peer is closed; -6 no peer reachable;
/// -7 no peer accepted it.
#[no_mangle]
pub unsafe extern "C" fn peer_bag_publish(p: *mut peer, key: *const u8, value: *const u8) -> c_int {
    guard("peer_bag_publish", || {
        let n = node(p)?;
        let key = Id(unsafe { read_arr::<32>(key, "key") }?);
        let value = unsafe { read_arr::<32>(value, "value") }?;
        n.bag_publish(&key, &value)?;
        Ok(PEER_OK)
    })
}

/// Shared body of the six bag queries; `uid` is Some for the `_at` forms.
unsafe fn bag_query(
    p: *mut peer,
    uid: Option<*const u8>,
    kind: BagKind,
    key: *const u8,
    values_out: *mut u8,
    cap: usize,
    n_out: *mut usize,
) -> Status {
    let n = node(p)?;
    let uid = match uid {
        Some(u) => Some(Id(unsafe { read_arr::<32>(u, "uid") }?)),
        None => None,
    };
    let key = Id(unsafe { read_arr::<32>(key, "key") }?);
    if cap > 0 {
        check_out(values_out, "values_out")?;
    }
    check_out(n_out, "n_out")?;
    if cap.checked_mul(32).is_none() {
        return Err(invalid(format!("cap {cap} is too large")));
    }
    let values = match uid {
        Some(uid) => n.bag_query_at(&uid, kind, &key, cap)?,
        None => n.bag_query(kind, &key, cap)?,
    };
    let count = values.len().min(cap);
    for (i, v) in values.iter().take(count).enumerate() {
        // SAFETY: values_out holds cap * 32 bytes and i < cap.
        unsafe { write_bytes(values_out.add(i * 32), v) };
    }
    unsafe { *n_out = count };
    Ok(PEER_OK)
}

/// The most-published values of the bag `key` (32 bytes, read), merged over the key's
/// nearest peers: at most `cap` values of 32 bytes each are written, most popular first, to
/// `values_out` (caller-owned, cap * 32 bytes; may be NULL only when cap is 0), and their
/// count to `*n_out`. An empty bag gives 0 with *n_out = 0.
/// Returns 0 ok; -1 p, key, n_out (or values_out with cap > 0) is NULL; -4 peer is closed;
/// -6 no peer reachable.
#[no_mangle]
pub unsafe extern "C" fn peer_bag_popular(
    p: *mut peer,
    key: *const u8,
    values_out: *mut u8,
    cap: usize,
    n_out: *mut usize,
) -> c_int {
    guard("peer_bag_popular", || unsafe { bag_query(p, None, BagKind::Popular, key, values_out, cap, n_out) })
}

/// As peer_bag_popular, but only the local answer of the peer whose uid is `uid` (32 bytes,
/// read), found through the network. Returns -6 when that peer cannot be found or reached.
#[no_mangle]
pub unsafe extern "C" fn peer_bag_popular_at(
    p: *mut peer,
    uid: *const u8,
    key: *const u8,
    values_out: *mut u8,
    cap: usize,
    n_out: *mut usize,
) -> c_int {
    guard("peer_bag_popular_at", || unsafe { bag_query(p, Some(uid), BagKind::Popular, key, values_out, cap, n_out) })
}

/// As peer_bag_popular, but the most recently published values first.
#[no_mangle]
pub unsafe extern "C" fn peer_bag_recent(
    p: *mut peer,
    key: *const u8,
    values_out: *mut u8,
    cap: usize,
    n_out: *mut usize,
) -> c_int {
    guard("peer_bag_recent", || unsafe { bag_query(p, None, BagKind::Recent, key, values_out, cap, n_out) })
}

/// As peer_bag_popular_at, but the most recently published values first.
#[no_mangle]
pub unsafe extern "C" fn peer_bag_recent_at(
    p: *mut peer,
    uid: *const u8,
    key: *const u8,
    values_out: *mut u8,
    cap: usize,
    n_out: *mut usize,
) -> c_int {
    guard("peer_bag_recent_at", || unsafe { bag_query(p, Some(uid), BagKind::Recent, key, values_out, cap, n_out) })
}

/// As peer_bag_popular, but a random sample of the bag's values.
#[no_mangle]
pub unsafe extern "C" fn peer_bag_sample(
    p: *mut peer,
    key: *const u8,
    values_out: *mut u8,
    cap: usize,
    n_out: *mut usize,
) -> c_int {
    guard("peer_bag_sample", || unsafe { bag_query(p, None, BagKind::Sample, key, values_out, cap, n_out) })
}

/// As peer_bag_popular_at, but a random sample of that peer's values.
#[no_mangle]
pub unsafe extern "C" fn peer_bag_sample_at(
    p: *mut peer,
    uid: *const u8,
    key: *const u8,
    values_out: *mut u8,
    cap: usize,
    n_out: *mut usize,
) -> c_int {
    guard("peer_bag_sample_at", || unsafe { bag_query(p, Some(uid), BagKind::Sample, key, values_out, cap, n_out) })
}

// ---------------------------------------------------------------------------------------
// Namespaces

/// Sign (`key`, `value`) with the Ed25519 `secret` key and store the record at the peers
/// nearest (public_key, key); a later set replaces an earlier one. All four inputs are 32
/// bytes, read. On 0 the 64-byte signature is written to `signature_out` (caller-owned;
/// may be NULL when not wanted).
/// Returns 0 ok; -1 p, secret, public_key, key or value is NULL; -4 peer is closed;
/// -6 no peer reachable; -7 no peer accepted it; -8 `secret` is not the secret key of
/// `public_key` (checked before any network traffic).
#[no_mangle]
pub unsafe extern "C" fn peer_namespace_set(
    p: *mut peer,
    secret: *const u8,
    public_key: *const u8,
    key: *const u8,
    value: *const u8,
    signature_out: *mut u8,
) -> c_int {
    guard("peer_namespace_set", || {
        let n = node(p)?;
        let secret = unsafe { read_arr::<32>(secret, "secret") }?;
        let public_key = unsafe { read_arr::<32>(public_key, "public_key") }?;
        let key = unsafe { read_arr::<32>(key, "key") }?;
        let value = unsafe { read_arr::<32>(value, "value") }?;
        if crate::sign::public_of(&secret) != public_key {
            return Err(Error::KeyMismatch.into());
        }
        let signature = n.namespace_set(&secret, &public_key, &key, &value)?;
        if !signature_out.is_null() {
            unsafe { write_bytes(signature_out, &signature) };
        }
        Ok(PEER_OK)
    })
}

/// Shared body of the four namespace reads.
#[allow(clippy::too_many_arguments)]
unsafe fn namespace_ref(
    p: *mut peer,
    uid: Option<*const u8>,
    public_key: *const u8,
    key: *const u8,
    pinned: Option<*const u8>,
    value_out: *mut u8,
    signature_out: *mut u8,
) -> Status {
    let n = node(p)?;
    let uid = match uid {
        Some(u) => Some(Id(unsafe { read_arr::<32>(u, "uid") }?)),
        None => None,
    };
    let public_key = unsafe { read_arr::<32>(public_key, "public_key") }?;
    let key = unsafe { read_arr::<32>(key, "key") }?;
    let pinned = match pinned {
        Some(s) => Some(unsafe { read_arr::<64>(s, "signature") }?),
        None => None,
    };
    check_out(value_out, "value_out")?;
    let found = match uid {
        Some(uid) => n.namespace_ref_at(&uid, &public_key, &key, pinned.as_ref())?,
        None => n.namespace_ref(&public_key, &key, pinned.as_ref())?,
    };
    match found {
        None => Ok(PEER_NOT_FOUND),
        Some((value, signature)) => {
            unsafe { write_bytes(value_out, &value) };
            if !signature_out.is_null() {
                unsafe { write_bytes(signature_out, &signature) };
            }
            Ok(PEER_OK)
        }
    }
}

/// The newest validly signed value under (public_key, key) (32 bytes each, read). On 0 the
/// 32-byte value is written to `value_out` and its 64-byte signature to `signature_out`
/// (both caller-owned; signature_out may be NULL when not wanted).
/// Returns 0 found; 1 no valid record; -1 p, public_key, key or value_out is NULL; -4 peer
/// is closed; -6 no peer reachable.
#[no_mangle]
pub unsafe extern "C" fn peer_namespace_ref(
    p: *mut peer,
    public_key: *const u8,
    key: *const u8,
    value_out: *mut u8,
    signature_out: *mut u8,
) -> c_int {
    guard("peer_namespace_ref", || unsafe { namespace_ref(p, None, public_key, key, None, value_out, signature_out) })
}

/// As peer_namespace_ref, but only the local answer of the peer whose uid is `uid` (32
/// bytes, read). Returns -6 when that peer cannot be found or reached, 1 when it has no
/// valid record.
#[no_mangle]
pub unsafe extern "C" fn peer_namespace_ref_at(
    p: *mut peer,
    uid: *const u8,
    public_key: *const u8,
    key: *const u8,
    value_out: *mut u8,
    signature_out: *mut u8,
) -> c_int {
    guard("peer_namespace_ref_at", || unsafe {
        namespace_ref(p, Some(uid), public_key, key, None, value_out, signature_out)
    })
}

/// As peer_namespace_ref, but only the record whose signature is exactly the 64 bytes at
/// `signature` (read) is accepted. Returns 1 when no peer has that record.
#[no_mangle]
pub unsafe extern "C" fn peer_namespace_ref_pinned(
    p: *mut peer,
    public_key: *const u8,
    key: *const u8,
    signature: *const u8,
    value_out: *mut u8,
) -> c_int {
    guard("peer_namespace_ref_pinned", || unsafe {
        namespace_ref(p, None, public_key, key, Some(signature), value_out, ptr::null_mut())
    })
}

/// As peer_namespace_ref_at, but only the record whose signature is exactly the 64 bytes at
/// `signature` (read) is accepted. Returns 1 when that peer does not have that record.
#[no_mangle]
pub unsafe extern "C" fn peer_namespace_ref_at_pinned(
    p: *mut peer,
    uid: *const u8,
    public_key: *const u8,
    key: *const u8,
    signature: *const u8,
    value_out: *mut u8,
) -> c_int {
    guard("peer_namespace_ref_at_pinned", || unsafe {
        namespace_ref(p, Some(uid), public_key, key, Some(signature), value_out, ptr::null_mut())
    })
}

// ---------------------------------------------------------------------------------------
// Keys and identifiers

/// Write a fresh Ed25519 key pair: 32-byte secret to `secret_out`, 32-byte public key to
/// `public_out` (both caller-owned). Writes nothing if either is NULL.
#[no_mangle]
pub unsafe extern "C" fn peer_keypair(secret_out: *mut u8, public_out: *mut u8) {
    guard_or("peer_keypair", (), || {
        if secret_out.is_null() || public_out.is_null() {
            set_last_error("peer_keypair", "null pointer argument");
            return;
        }
        let (secret, public) = crate::sign::keypair(&mut rand::rngs::OsRng);
        unsafe {
            write_bytes(secret_out, &secret);
            write_bytes(public_out, &public);
        }
    })
}

/// Write 32 random bytes, a fresh uid, to `uid_out` (caller-owned). NULL writes nothing.
#[no_mangle]
pub unsafe extern "C" fn peer_random_uid(uid_out: *mut u8) {
    guard_or("peer_random_uid", (), || {
        if uid_out.is_null() {
            set_last_error("peer_random_uid", "null pointer argument");
            return;
        }
        let uid = Id::random(&mut rand::rngs::OsRng);
        unsafe { write_bytes(uid_out, &uid.0) };
    })
}

// ---------------------------------------------------------------------------------------
// Errors and versions

/// Every status's name, NUL-terminated once; "unknown status" for numbers not in use.
static STATUS_NAMES: LazyLock<HashMap<c_int, CString>> =
    LazyLock::new(|| (-100..=1).map(|c| (c, CString::new(status_name(c)).unwrap_or_default())).collect());
static UNKNOWN_STATUS: LazyLock<CString> = LazyLock::new(|| CString::new(status_name(c_int::MIN)).unwrap_or_default());

/// A short static description of a status code ("ok", "not found", "peer is closed", ...;
/// "unknown status" for other numbers). Never NULL; the caller must not free it.
#[no_mangle]
pub extern "C" fn peer_strerror(status: c_int) -> *const c_char {
    guard_or("peer_strerror", c"internal error".as_ptr(), || {
        STATUS_NAMES.get(&status).unwrap_or(&UNKNOWN_STATUS).as_ptr()
    })
}

/// The message of this thread's last failed call ("" if none yet), saying which function
/// failed and why. Owned by libpeer and valid until this thread's next libpeer call; copy it
/// to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn peer_last_error() -> *const c_char {
    guard_or("peer_last_error", c"".as_ptr(), || {
        // The CString's heap buffer stays put until set_last_error replaces it.
        LAST_ERROR.try_with(|slot| slot.borrow().as_ptr()).unwrap_or(c"".as_ptr())
    })
}

/// PEER_MAX_VALUE_SIZE, for bindings that cannot read macros.
#[no_mangle]
pub extern "C" fn peer_max_value_size() -> usize {
    MAX_VALUE_SIZE
}

/// The library's version, "MAJOR.MINOR.PATCH" (static, never NULL; do not free). Compare with
/// the PEER_VERSION_* macros to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn peer_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Copy the peer's counters into `*out` (caller-owned).
/// Returns 0 ok; -1 p or out is NULL; -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_stats(p: *const peer, out: *mut peer_stats) -> c_int {
    guard("peer_stats", || {
        let n = node(p)?;
        check_out(out, "out")?;
        let s = peer_stats::from(n.stats()?);
        unsafe { *out = s };
        Ok(PEER_OK)
    })
}

// ---------------------------------------------------------------------------------------
// External transport

/// Hand an external peer one envelope that arrived for it: the `len` bytes at `envelope`
/// (read; the caller keeps ownership), the datum text `#(from "ip" port MESSAGE)` where
/// ip:port is the sender's address on the program's network.
/// Returns 0 accepted; -1 p or envelope is NULL; -4 peer is closed; -10 the envelope or its
/// message is malformed; -2 the peer is not an external one.
#[no_mangle]
pub unsafe extern "C" fn peer_ext_push(p: *mut peer, envelope: *const u8, len: usize) -> c_int {
    guard("peer_ext_push", || {
        let n = node(p)?;
        if envelope.is_null() {
            return Err(null("envelope"));
        }
        let bytes = unsafe { read_slice(envelope, len, "envelope") }?;
        n.ext_push_envelope(bytes)?;
        Ok(PEER_OK)
    })
}

/// Take the next envelope an external peer wants sent, waiting at most `timeout_ms`. On 0:
/// the destination's IP text, NUL-terminated, is written to `ip_out` (caller-owned,
/// PEER_IP_BUF_LEN = 64 bytes), its port to `*port_out`, and `*envelope_out` receives a
/// libpeer-allocated buffer of `*len_out` bytes (the datum text `#(from "ip" port MESSAGE)`,
/// from = this peer) that the caller delivers to that address and then releases with
/// peer_bytes_free(*envelope_out, *len_out).
/// Returns 0 got one; 1 none within timeout_ms (nothing written); -1 an argument is NULL;
/// -4 peer is closed; -2 the peer is not an external one.
#[no_mangle]
pub unsafe extern "C" fn peer_ext_pop(
    p: *mut peer,
    timeout_ms: u32,
    ip_out: *mut c_char,
    port_out: *mut u16,
    envelope_out: *mut *mut u8,
    len_out: *mut usize,
) -> c_int {
    guard("peer_ext_pop", || {
        let n = node(p)?;
        check_out(ip_out, "ip_out")?;
        check_out(port_out, "port_out")?;
        check_out(envelope_out, "envelope_out")?;
        check_out(len_out, "len_out")?;
        let Some((to, bytes)) = n.ext_pop_envelope(Duration::from_millis(timeout_ms.into()))? else {
            return Ok(PEER_NOT_FOUND);
        };
        let mut ip = to.ip().to_string().into_bytes();
        // An IPv6 text is at most 45 bytes; the check keeps a future change from overflowing.
        if ip.len() >= PEER_IP_BUF_LEN {
            return Err(Fail { code: PEER_ERR_INTERNAL, msg: format!("address text too long: {}", to.ip()) });
        }
        ip.push(0);
        let (b, len) = leak_bytes(bytes);
        unsafe {
            write_bytes(ip_out as *mut u8, &ip);
            *port_out = to.port();
            *envelope_out = b;
            *len_out = len;
        }
        Ok(PEER_OK)
    })
}

/// Diagnostic: read one message text (the `len` bytes at `text`, read) with libpeer's safe
/// reader and write it back in libpeer's canonical text. On 0 `*out` receives a
/// libpeer-allocated, NUL-terminated buffer of `*len_out` bytes plus the NUL; release it with
/// peer_bytes_free(*out, *len_out + 1).
/// Returns 0 ok; -1 text (with len > 0), out or len_out is NULL; -10 unreadable.
#[no_mangle]
pub unsafe extern "C" fn peer_wire_normalize(
    text: *const u8,
    len: usize,
    out: *mut *mut u8,
    len_out: *mut usize,
) -> c_int {
    guard("peer_wire_normalize", || {
        let text = unsafe { read_slice(text, len, "text") }?;
        check_out(out, "out")?;
        check_out(len_out, "len_out")?;
        let mut canon = crate::wire::codec::normalize(text).map_err(|e| Fail::from(Error::Malformed(e.to_string())))?;
        let n = canon.len();
        canon.push(0);
        let (b, _) = leak_bytes(canon);
        unsafe {
            *out = b;
            *len_out = n;
        }
        Ok(PEER_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_error() -> String {
        unsafe { CStr::from_ptr(peer_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn status_constants_match_error_codes() {
        let pairs = [
            (Error::Null, PEER_ERR_NULL),
            (Error::Invalid(String::new()), PEER_ERR_INVALID),
            (Error::TooLarge(0), PEER_ERR_TOO_LARGE),
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
    }

    #[test]
    fn strerror_is_static_and_named() {
        for c in -10..=1 {
            let s = unsafe { CStr::from_ptr(peer_strerror(c)) }.to_str().unwrap();
            assert_eq!(s, status_name(c));
            assert_ne!(s, "unknown status");
        }
        let s = unsafe { CStr::from_ptr(peer_strerror(12345)) }.to_str().unwrap();
        assert_eq!(s, "unknown status");
    }

    #[test]
    fn null_and_unknown_handles_are_errors() {
        let mut uid = [0u8; 32];
        assert_eq!(unsafe { peer_uid(ptr::null(), uid.as_mut_ptr()) }, PEER_ERR_NULL);
        assert!(last_error().contains("peer_uid"), "{}", last_error());
        let forged = 0xdead_0000usize as *mut peer;
        assert_eq!(unsafe { peer_uid(forged, uid.as_mut_ptr()) }, PEER_ERR_CLOSED);
        assert_eq!(peer_bootstrap(forged), PEER_ERR_CLOSED);
        assert_eq!(peer_port(forged), 0);
        peer_free(forged);
        peer_free(ptr::null_mut());
        assert_eq!(uid, [0u8; 32], "out-param written on failure");
    }

    #[test]
    fn peer_new_checks_arguments_before_creating() {
        let uid = [7u8; 32];
        let mut out: *mut peer = ptr::null_mut();
        let ip = c"127.0.0.1";
        let call = |u: *const u8, ip: *const c_char, r: u32, o: *mut *mut peer| unsafe { peer_new(u, ip, 0, r, o) };
        assert_eq!(call(ptr::null(), ip.as_ptr(), 5, &mut out), PEER_ERR_NULL);
        assert_eq!(call(uid.as_ptr(), ptr::null(), 5, &mut out), PEER_ERR_NULL);
        assert_eq!(call(uid.as_ptr(), ip.as_ptr(), 5, ptr::null_mut()), PEER_ERR_NULL);
        assert_eq!(call(uid.as_ptr(), ip.as_ptr(), 4, &mut out), PEER_ERR_INVALID);
        assert_eq!(call(uid.as_ptr(), ip.as_ptr(), 21, &mut out), PEER_ERR_INVALID);
        assert_eq!(call(uid.as_ptr(), c"999.1.1.1".as_ptr(), 5, &mut out), PEER_ERR_INVALID);
        assert_eq!(call(uid.as_ptr(), c"nonsense".as_ptr(), 5, &mut out), PEER_ERR_INVALID);
        assert!(last_error().contains("nonsense"), "{}", last_error());
        let not_utf8 = [0xffu8, 0xfe, 0];
        assert_eq!(call(uid.as_ptr(), not_utf8.as_ptr() as *const c_char, 5, &mut out), PEER_ERR_INVALID);
        assert!(out.is_null(), "out written on failure");
    }

    #[test]
    fn buffers_round_trip_through_bytes_free() {
        let (b, len) = leak_bytes(vec![1, 2, 3]);
        assert_eq!(len, 3);
        unsafe { peer_bytes_free(b, len) };
        let (b, len) = leak_bytes(Vec::new());
        assert!(!b.is_null());
        unsafe { peer_bytes_free(b, len) };
        unsafe { peer_bytes_free(ptr::null_mut(), 10) };
    }

    #[test]
    fn keys_and_uids_are_random_and_matched() {
        let (mut s, mut p, mut u1, mut u2) = ([0u8; 32], [0u8; 32], [0u8; 32], [0u8; 32]);
        unsafe {
            peer_keypair(s.as_mut_ptr(), p.as_mut_ptr());
            peer_random_uid(u1.as_mut_ptr());
            peer_random_uid(u2.as_mut_ptr());
            peer_keypair(ptr::null_mut(), p.as_mut_ptr());
            peer_random_uid(ptr::null_mut());
        }
        assert_eq!(crate::sign::public_of(&s), p);
        assert_ne!(u1, u2);
    }

    #[test]
    fn version_and_limits() {
        let v = unsafe { CStr::from_ptr(peer_version()) }.to_str().unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        assert_eq!(peer_max_value_size(), PEER_MAX_VALUE_SIZE);
    }

    /// The checked-in header is what build.rs generates from this file. build.rs rewrites
    /// include/peer.h on each build unless PEER_HEADER_NO_WRITE is set, so run with that set
    /// (`make check-header`) for this test to catch a stale committed header.
    #[test]
    fn header_is_fresh() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/peer.h"));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/peer.h");
        let checked_in = std::fs::read_to_string(path).expect("include/peer.h");
        assert!(generated == checked_in, "include/peer.h is stale: rebuild without PEER_HEADER_NO_WRITE and commit it");
    }
}
