//! A peer's counters in C: the `struct peer_stats` and peer_stats, which fills one.

use super::support::{check_out, guard, node};
use super::types::peer;
use crate::node::Stats;
use crate::status::Status;
use std::ffi::c_int;

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

/// The C view of a peer's counters: fixed-width fields whatever `usize` is.
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

/// Copy the peer's counters into `*out` (caller-owned).
/// Returns 0 ok; -1 p or out is NULL; -4 peer is closed.
#[no_mangle]
pub unsafe extern "C" fn peer_stats(p: *const peer, out: *mut peer_stats) -> c_int {
    guard("peer_stats", || {
        let n = node(p)?;
        check_out(out, "out")?;
        let s = peer_stats::from(n.stats()?);
        unsafe { *out = s };
        Ok(Status::Ok)
    })
}
