//! A peer's counters in C: the growable `struct peer_stats` (peer_stats_init, peer_stats) for
//! the main figures, and peer_stats_list for every figure by name (per request kind and per
//! routing bucket too), the same names the Scheme libraries' `peer-stats` and the `peer`
//! command show.

use super::support::{check_out, guard, init_sized, invalid, node, null};
use super::types::peer;
use crate::node::Stats;
use crate::status::Status;
use std::ffi::{c_char, c_int, CString};
use std::mem::{offset_of, size_of};
use std::sync::LazyLock;

/// A peer's main counters (peer_stats). Growable: set `size` with peer_stats_init first;
/// peer_stats fills only the fields `size` covers, so a program built against an older,
/// shorter struct keeps working, and fields are only ever added at the end.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct peer_stats {
    /// sizeof(struct peer_stats), set by peer_stats_init.
    pub size: usize,
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
    /// TCP bytes sent and received, encryption and framing included (0 on a
    /// program-supplied transport).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Entries of this peer's republish list (what it stored itself).
    pub published: u64,
    /// Maintenance so far: republishes started, re-stores as a holder, records handed to
    /// newly joined nearer peers, bucket refresh lookups.
    pub republished: u64,
    pub restored: u64,
    pub handed_over: u64,
    pub bucket_refreshes: u64,
}

/// One named figure (peer_stats_list).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct peer_stat {
    /// Static, NUL-terminated; never freed by the caller.
    pub name: *const c_char,
    pub value: u64,
}

/// The C view of a peer's counters: fixed-width fields whatever `usize` is.
impl From<&Stats> for peer_stats {
    fn from(s: &Stats) -> Self {
        peer_stats {
            size: size_of::<peer_stats>(),
            contacts: s.contacts as u64,
            values: s.values as u64,
            value_bytes: s.value_bytes as u64,
            bag_entries: s.bag_entries as u64,
            namespace_records: s.namespace_records as u64,
            requests_sent: s.requests_sent,
            requests_failed: s.requests_failed,
            requests_received: s.requests_received,
            open_connections: s.open_connections as u64,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            published: s.published as u64,
            republished: s.republished,
            restored: s.restored,
            handed_over: s.handed_over,
            bucket_refreshes: s.bucket_refreshes,
        }
    }
}

/// Zero the caller's `*s` of `size` bytes (its `sizeof(struct peer_stats)`) and set
/// `s->size` to `size`, writing nothing past it. C programs call it through the header's
/// `peer_stats_init(s)` macro, which passes `sizeof *(s)`. Call it before peer_stats.
/// Returns 0 ok; -1 s is NULL; -2 size is smaller than the `size` field.
#[no_mangle]
pub unsafe extern "C" fn peer_stats_init_sized(s: *mut peer_stats, size: usize) -> c_int {
    guard("peer_stats_init_sized", || {
        if s.is_null() {
            return Err(null("s"));
        }
        // SAFETY: non-NULL; the caller gives `size` writable bytes.
        unsafe { init_sized(s.cast(), size, size_of::<peer_stats>()) }.map_err(invalid)?;
        Ok(Status::Ok)
    })
}

/// Fill the fields of `*out` (caller-owned) that `out->size` covers with the peer's counters
/// (`size` itself is left as it is).
/// Returns 0 ok; -1 p or out is NULL; -2 out->size is too small for any field (use
/// peer_stats_init); -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_stats(p: *const peer, out: *mut peer_stats) -> c_int {
    guard("peer_stats", || {
        let n = node(p)?;
        check_out(out, "out")?;
        // SAFETY: non-NULL; `size` is the first field of every version of the struct.
        let size = unsafe { std::ptr::addr_of!((*out).size).read() };
        let first = offset_of!(peer_stats, contacts);
        let fields = size.min(size_of::<peer_stats>());
        if fields < first + 8 {
            return Err(super::support::invalid(format!("stats size {size} is too small (use peer_stats_init)")));
        }
        let s = peer_stats::from(&n.stats()?);
        // SAFETY: the caller's struct is at least `size` bytes; copy the u64 fields after
        // `size` that it covers, whole fields only.
        let len = (fields - first) / 8 * 8;
        unsafe {
            let src = (&s as *const peer_stats as *const u8).add(first);
            let dst = (out as *mut u8).add(first);
            std::ptr::copy_nonoverlapping(src, dst, len);
        }
        Ok(Status::Ok)
    })
}

/// Every figure of the peer by name, the names the Scheme `peer-stats` and the `peer`
/// command use: the fields of struct peer_stats (`contacts`, `value-bytes`, ...), requests
/// per kind (`sent-set`, `failed-ref`, `received-iam`, ... for iam, peers, set, ref, bag-add,
/// bag-query, namespace-set, namespace-ref) and contacts per routing bucket (`bucket-i`: those
/// sharing exactly i leading bits with the peer's uid, up to its deepest bucket). Writes the
/// first min(cap, n) of them to `out` (caller-owned, room for `cap`; names are static) and n
/// to `*n_out`: call with cap 0 to learn n (it grows with the routing table).
/// Returns 0 ok; -1 p or n_out is NULL, or out is NULL with cap > 0; -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_stats_list(p: *const peer, out: *mut peer_stat, cap: usize, n_out: *mut usize) -> c_int {
    guard("peer_stats_list", || {
        let n = node(p)?;
        check_out(n_out, "n_out")?;
        if cap > 0 {
            check_out(out, "out")?;
        }
        let named = n.stats()?.named();
        for (i, (name, value)) in named.iter().take(cap).enumerate() {
            // SAFETY: `out` holds `cap` entries.
            unsafe { out.add(i).write(peer_stat { name: c_name(name), value: *value }) };
        }
        unsafe { *n_out = named.len() };
        Ok(Status::Ok)
    })
}

/// The static C string of a stats name (every name is known up front).
fn c_name(name: &'static str) -> *const c_char {
    static NAMES: LazyLock<parking_lot::Mutex<std::collections::HashMap<&'static str, CString>>> =
        LazyLock::new(Default::default);
    let mut m = NAMES.lock();
    m.entry(name).or_insert_with(|| CString::new(name).unwrap_or_default()).as_ptr()
}
