//! Values: storing bytes under their SHA-256 (peer_set), fetching them (peer_ref), and
//! releasing any buffer libpeer allocated (peer_bytes_free).

use super::support::{check_out, free_bytes, guard, guard_or, leak_bytes, node, read_arr, read_slice, write_bytes};
use super::types::peer;
use crate::id::Id;
use crate::status::Status;
use std::ffi::c_int;

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
        // Node::set refuses a value over the limit before any traffic.
        let key = n.set(value)?;
        unsafe { write_bytes(key_out, &key.0) };
        Ok(Status::Ok)
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
            None => Ok(Status::NotFound),
            Some(v) => {
                let (b, len) = leak_bytes(v);
                unsafe {
                    *value_out = b;
                    *len_out = len;
                }
                Ok(Status::Ok)
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
        unsafe { free_bytes(bytes, len) };
    })
}

#[cfg(test)]
mod tests {
    use super::super::peers::{peer_free, peer_new_external};
    use super::super::support::last_error_text;
    use super::*;
    use crate::consts::MAX_VALUE_SIZE;
    use crate::status::codes::{PEER_ERR_NULL, PEER_ERR_TOO_LARGE, PEER_OK};
    use std::ptr;

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

    /// The size check is Node's now: same status, still before any traffic (this external
    /// peer has no one to send to), and still after the pointer checks.
    #[test]
    fn too_large_is_checked_by_node() {
        let mut p: *mut peer = ptr::null_mut();
        let rc = unsafe { peer_new_external([3u8; 32].as_ptr(), c"127.0.0.1".as_ptr(), 4001, 5, &mut p) };
        assert_eq!(rc, PEER_OK);
        let big = vec![7u8; MAX_VALUE_SIZE + 1];
        let mut key = [0xABu8; 32];
        assert_eq!(unsafe { peer_set(p, big.as_ptr(), big.len(), key.as_mut_ptr()) }, PEER_ERR_TOO_LARGE);
        assert!(last_error_text().starts_with("peer_set: value too large"), "{}", last_error_text());
        assert_eq!(unsafe { peer_set(p, big.as_ptr(), big.len(), ptr::null_mut()) }, PEER_ERR_NULL);
        assert_eq!(unsafe { peer_set(p, ptr::null(), big.len(), key.as_mut_ptr()) }, PEER_ERR_NULL);
        assert_eq!(key, [0xABu8; 32], "key_out written on failure");
        peer_free(p);
    }
}
