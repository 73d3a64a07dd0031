//! Peers: making one (peer_new, peer_new_with and its peer_options, peer_new_external),
//! releasing it (peer_free), and the calls on a whole peer (peer_port, peer_uid,
//! peer_connect, peer_bootstrap, peer_forget).

use super::support::{
    check_out, guard, guard_or, init_sized, invalid, node, null, read_arr, read_host, read_ip, register, unregister, write_bytes, write_ip,
};
use super::types::{peer, peer_options, Outcome};
use crate::diversity::Diversity;
use crate::id::Id;
use crate::node::{Node, Options};
use crate::status::Status;
use std::ffi::{c_char, c_int, CStr};
use std::mem::{offset_of, size_of};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Shared body of peer_new and peer_new_external. The replication range is `Node`'s to check.
unsafe fn new_peer(
    external: bool,
    uid: *const u8,
    ip: *const c_char,
    port: u16,
    replication: u32,
    out: *mut *mut peer,
) -> Outcome {
    let uid = Id(unsafe { read_arr::<32>(uid, "uid") }?);
    let node = if external {
        // NULL: the address derived from the uid.
        let addr = if ip.is_null() { None } else { Some(SocketAddr::new(unsafe { read_ip(ip, "ip") }?, port)) };
        check_out(out, "out")?;
        Node::new_external(uid, addr, replication)?
    } else {
        let ip = unsafe { read_ip(ip, "ip") }?;
        check_out(out, "out")?;
        Node::new(uid, ip, port, replication)?
    };
    // SAFETY: `out` checked non-NULL; the caller gives a writable `struct peer *` slot.
    unsafe { *out = register(node) };
    Ok(Status::Ok)
}

/// Create a peer on the built-in encrypted TCP transport, listening on `ip`:`port`.
///
/// `uid`: 32 bytes, read. `ip`: NUL-terminated IPv4 or IPv6 address text, or a host name
/// (its first IPv4 address, else its first address), read. `port` 0 picks an ephemeral port
/// (see peer_port). `replication`: 5..20 (5 is the usual value).
/// On success `*out` receives a new handle that the caller owns and releases with peer_free;
/// on failure `*out` is untouched.
/// Returns 0 ok; -1 uid, ip or out is NULL; -2 replication out of range, or ip neither an IP
/// address nor a resolvable host name; -5 the OS refused (address in use, ...); -9 internal error.
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

/// Fill the caller's `*o` of `size` bytes (its `sizeof(struct peer_options)`) with the
/// defaults (all zero, no data directory) and set `o->size` to `size`: nothing past `size`
/// is written, so a program built against an older, shorter struct stays safe. C programs
/// call it through the header's `peer_options_init(o)` macro, which passes `sizeof *(o)`.
/// `o` is the caller's (stack or heap); libpeer keeps no pointer to it.
/// Returns 0 ok; -1 o is NULL; -2 size is smaller than the `size` field.
#[no_mangle]
pub unsafe extern "C" fn peer_options_init_sized(o: *mut peer_options, size: usize) -> c_int {
    guard("peer_options_init_sized", || {
        if o.is_null() {
            return Err(null("o"));
        }
        // SAFETY: non-NULL; the caller gives `size` writable bytes.
        unsafe { init_sized(o.cast(), size, size_of::<peer_options>()) }.map_err(invalid)?;
        Ok(Status::Ok)
    })
}

/// The caller's options, reading only the fields its `size` covers.
unsafe fn read_options(o: *const peer_options) -> Result<Options, super::types::Fail> {
    let mut opts = Options::default();
    if o.is_null() {
        return Ok(opts);
    }
    // SAFETY: non-NULL; `size` is the first field of every version of the struct.
    let size = unsafe { std::ptr::addr_of!((*o).size).read() };
    if size < size_of::<usize>() {
        return Err(invalid(format!("options size {size} is too small (use peer_options_init)")));
    }
    let has = |offset: usize, len: usize| offset + len <= size;
    // SAFETY (each read): the caller's struct is at least `size` bytes and shares our layout.
    if has(offset_of!(peer_options, replication), size_of::<u32>()) {
        opts.replication = unsafe { std::ptr::addr_of!((*o).replication).read() };
    }
    if has(offset_of!(peer_options, data_dir), size_of::<*const c_char>()) {
        let dir = unsafe { std::ptr::addr_of!((*o).data_dir).read() };
        if !dir.is_null() {
            // SAFETY: a NUL-terminated string by the contract.
            let bytes = unsafe { CStr::from_ptr(dir) }.to_bytes();
            if bytes.is_empty() {
                return Err(invalid("data_dir is empty".into()));
            }
            opts.data_dir = Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)));
        }
    }
    if has(offset_of!(peer_options, republish_s), size_of::<u32>()) {
        opts.republish_s = unsafe { std::ptr::addr_of!((*o).republish_s).read() };
    }
    if has(offset_of!(peer_options, expire_s), size_of::<u32>()) {
        opts.expire_s = unsafe { std::ptr::addr_of!((*o).expire_s).read() };
    }
    if has(offset_of!(peer_options, address_limits), size_of::<u32>()) {
        let code = unsafe { std::ptr::addr_of!((*o).address_limits).read() };
        opts.diversity = Diversity::from_code(code)
            .ok_or_else(|| invalid(format!("address_limits {code} is not 0 (default), 1 (strict) or 2 (off)")))?;
    }
    Ok(opts)
}

/// Create a peer on the built-in encrypted TCP transport with options (see struct
/// peer_options); `o` NULL means all defaults.
///
/// `uid`: 32 bytes, read; NULL: the uid saved in `o->data_dir`, else a fresh random one (saved
/// there when there is a data directory). With a data directory the peer resumes its saved
/// uid, Noise key, routing contacts (it rejoins without a bootstrap address), held records and
/// republish list. `ip`, `port`, `out` and ownership as for peer_new.
/// Returns 0 ok; -1 ip or out is NULL; -2 an option out of range, or `uid` differs from the
/// one saved in the data directory; -5 the OS refused (address in use, directory not
/// creatable, ...); -11 another live peer holds the data directory; -12 the data directory
/// cannot be read (damaged, or not libpeer's); -9 internal error.
#[no_mangle]
pub unsafe extern "C" fn peer_new_with(
    uid: *const u8,
    ip: *const c_char,
    port: u16,
    o: *const peer_options,
    out: *mut *mut peer,
) -> c_int {
    guard("peer_new_with", || {
        let uid = if uid.is_null() { None } else { Some(Id(unsafe { read_arr::<32>(uid, "uid") }?)) };
        let ip = unsafe { read_ip(ip, "ip") }?;
        let opts = unsafe { read_options(o) }?;
        check_out(out, "out")?;
        let node = Node::with_options(uid, ip, port, &opts)?;
        // SAFETY: `out` checked non-NULL; the caller gives a writable `struct peer *` slot.
        unsafe { *out = register(node) };
        Ok(Status::Ok)
    })
}

/// Stop republishing what this peer stored under the 32-byte `key` (read): the value whose
/// key it is, its entries in the bag `key`, and its namespace records under `key` (any
/// public key). Copies at their holders live out their lifetime (struct peer_options
/// `expire_s`), then disappear.
/// Returns 0 forgotten; 1 nothing under `key` was being republished; -1 p or key is NULL;
/// -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_forget(p: *mut peer, key: *const u8) -> c_int {
    guard("peer_forget", || {
        let n = node(p)?;
        let key = Id(unsafe { read_arr::<32>(key, "key") }?);
        Ok(if n.forget(&key)? > 0 { Status::Ok } else { Status::NotFound })
    })
}

/// Create a peer on a program-supplied transport: it opens no sockets. `ip`:`port` is its
/// address on the program's network; `ip` NULL: an address derived from the whole uid (an
/// IPv6 unique local address `fd..` and a port, from SHA-256 of the uid; `port` is then
/// ignored; read it with peer_address). The program moves its messages with peer_ext_pop and
/// peer_ext_push; blocking calls on it complete only while someone does. It stores values of
/// at most PEER_MAX_EXTERNAL_VALUE_SIZE bytes, so that none of its messages serializes past
/// 1 MiB in the program's envelopes.
///
/// Arguments, ownership and statuses as for peer_new (`ip` may be NULL; no -5 for a bind).
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

/// Stop a peer, wait until it has stopped and release its handle. NULL is a no-op, and so is a handle
/// already freed. Calls blocked on this handle in other threads return -4; later calls on it
/// return -4 too (handles are never reused).
#[no_mangle]
pub extern "C" fn peer_free(p: *mut peer) {
    guard_or("peer_free", (), || {
        if p.is_null() {
            return;
        }
        // Out of the registry (and its lock) before close(): joining the thread may take a while.
        if let Some(node) = unregister(p) {
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

/// The peer's address: its IP text, NUL-terminated, into `ip_out` (caller-owned,
/// PEER_IP_BUF_LEN = 64 bytes) and its port into `*port_out`. A TCP peer gives the address it
/// is bound to; an external peer its address on the program's network.
/// Returns 0 ok; -1 p, ip_out or port_out is NULL; -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_address(p: *const peer, ip_out: *mut c_char, port_out: *mut u16) -> c_int {
    guard("peer_address", || {
        let n = node(p)?;
        check_out(ip_out, "ip_out")?;
        check_out(port_out, "port_out")?;
        let addr = n.addr();
        unsafe {
            write_ip(ip_out, addr.ip())?;
            *port_out = addr.port();
        }
        Ok(Status::Ok)
    })
}

/// Copy the peer's 32-byte uid into `uid_out` (caller-owned, 32 bytes).
/// Returns 0 ok; -1 p or uid_out is NULL; -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_uid(p: *const peer, uid_out: *mut u8) -> c_int {
    guard("peer_uid", || {
        let n = node(p)?;
        check_out(uid_out, "uid_out")?;
        unsafe { write_bytes(uid_out, &n.uid().0) };
        Ok(Status::Ok)
    })
}

/// Greet the peer at `ip`:`port` and add it to the routing table. `ip` (NUL-terminated,
/// read) is an IP address text or a host name: a name is resolved (getaddrinfo; a name that
/// cannot be one, or ends in `.invalid`, is not looked up) and its addresses of this peer's
/// family are tried in turn.
/// Returns 0 ok; -1 p or ip is NULL; -2 ip is not UTF-8; -4 peer is closed; -6 nobody
/// answered there, or the name resolves to no address this peer can reach.
#[no_mangle]
pub unsafe extern "C" fn peer_connect(p: *mut peer, ip: *const c_char, port: u16) -> c_int {
    guard("peer_connect", || {
        let n = node(p)?;
        let host = unsafe { read_host(ip, "ip") }?;
        n.connect_host(host, port)?;
        Ok(Status::Ok)
    })
}

/// Fill the routing table by looking up the peer's own uid through the peers it knows.
/// Returns 0 ok; -1 p is NULL; -4 peer is closed; -6 no known peer answered.
#[no_mangle]
pub extern "C" fn peer_bootstrap(p: *mut peer) -> c_int {
    guard("peer_bootstrap", || {
        node(p)?.bootstrap()?;
        Ok(Status::Ok)
    })
}

#[cfg(test)]
mod tests {
    use super::super::support::last_error_text;
    use super::*;
    use crate::status::codes::{PEER_ERR_CLOSED, PEER_ERR_INVALID, PEER_ERR_NULL, PEER_OK};
    use std::ptr;

    #[test]
    fn null_and_unknown_handles_are_errors() {
        let mut uid = [0u8; 32];
        assert_eq!(unsafe { peer_uid(ptr::null(), uid.as_mut_ptr()) }, PEER_ERR_NULL);
        assert!(last_error_text().contains("peer_uid"), "{}", last_error_text());
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
        assert_eq!(call(uid.as_ptr(), c"not an address".as_ptr(), 5, &mut out), PEER_ERR_INVALID);
        assert!(last_error_text().contains("not an address"), "{}", last_error_text());
        let not_utf8 = [0xffu8, 0xfe, 0];
        assert_eq!(call(uid.as_ptr(), not_utf8.as_ptr() as *const c_char, 5, &mut out), PEER_ERR_INVALID);
        assert!(out.is_null(), "out written on failure");
    }

    /// The range check is Node's now: the status and its place after the pointer checks hold.
    #[test]
    fn replication_is_checked_by_node() {
        let uid = [8u8; 32];
        let mut out: *mut peer = ptr::null_mut();
        for r in [0, 4, 21, u32::MAX] {
            let rc = unsafe { peer_new_external(uid.as_ptr(), c"127.0.0.1".as_ptr(), 4000, r, &mut out) };
            assert_eq!(rc, PEER_ERR_INVALID, "replication {r}");
            assert!(last_error_text().contains(&format!("replication {r}")), "{}", last_error_text());
        }
        let rc = unsafe { peer_new_external(uid.as_ptr(), c"127.0.0.1".as_ptr(), 4000, 4, ptr::null_mut()) };
        assert_eq!(rc, PEER_ERR_NULL, "pointers are checked first");
        assert!(out.is_null(), "out written on failure");
        for r in [5, 20] {
            let rc = unsafe { peer_new_external(uid.as_ptr(), c"127.0.0.1".as_ptr(), 4000, r, &mut out) };
            assert_eq!(rc, PEER_OK, "replication {r}");
            assert!(!out.is_null());
            peer_free(out);
            out = ptr::null_mut();
        }
    }
}
