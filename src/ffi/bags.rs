//! Bags: publishing a 32-byte value under a key (peer_bag_publish) and the six queries
//! (popular, recent, sample; over the key's nearest peers or `_at` one peer).

use super::support::{check_out, guard, invalid, node, read_arr, write_bytes};
use super::types::{peer, Outcome};
use crate::id::Id;
use crate::status::Status;
use crate::wire::BagKind;
use std::ffi::c_int;

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
        Ok(Status::Ok)
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
) -> Outcome {
    let n = node(p)?;
    let uid = uid.map(|u| unsafe { read_arr::<32>(u, "uid") }).transpose()?.map(Id);
    let key = Id(unsafe { read_arr::<32>(key, "key") }?);
    if cap > 0 {
        check_out(values_out, "values_out")?;
    }
    check_out(n_out, "n_out")?;
    // The caller's buffer is cap * 32 bytes; a cap whose size overflows cannot be one.
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
    Ok(Status::Ok)
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
