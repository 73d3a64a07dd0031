//! Namespaces: signing and storing a record under (public key, key) (peer_namespace_set)
//! and the four reads (newest or pinned by signature; over the nearest peers or `_at` one).

use super::support::{check_out, guard, node, read_arr, write_bytes};
use super::types::{peer, Outcome};
use crate::id::Id;
use crate::status::Status;
use std::ffi::c_int;
use std::ptr;

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
        // Node::namespace_set refuses a secret of another public key before any traffic.
        let signature = n.namespace_set(&secret, &public_key, &key, &value)?;
        if !signature_out.is_null() {
            unsafe { write_bytes(signature_out, &signature) };
        }
        Ok(Status::Ok)
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
) -> Outcome {
    let n = node(p)?;
    let uid = uid.map(|u| unsafe { read_arr::<32>(u, "uid") }).transpose()?.map(Id);
    let public_key = unsafe { read_arr::<32>(public_key, "public_key") }?;
    let key = unsafe { read_arr::<32>(key, "key") }?;
    let pinned = pinned.map(|s| unsafe { read_arr::<64>(s, "signature") }).transpose()?;
    check_out(value_out, "value_out")?;
    let found = match uid {
        Some(uid) => n.namespace_ref_at(&uid, &public_key, &key, pinned.as_ref())?,
        None => n.namespace_ref(&public_key, &key, pinned.as_ref())?,
    };
    match found {
        None => Ok(Status::NotFound),
        Some((value, signature)) => {
            unsafe { write_bytes(value_out, &value) };
            if !signature_out.is_null() {
                unsafe { write_bytes(signature_out, &signature) };
            }
            Ok(Status::Ok)
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

#[cfg(test)]
mod tests {
    use super::super::peers::{peer_free, peer_new_external};
    use super::super::support::last_error_text;
    use super::*;
    use crate::status::codes::{PEER_ERR_KEY_MISMATCH, PEER_ERR_NULL, PEER_OK};

    /// The key check is Node's now: same status, before any traffic (this external peer has
    /// no one to send to), after the pointer checks, and nothing written.
    #[test]
    fn key_mismatch_is_checked_by_node() {
        let mut p: *mut peer = ptr::null_mut();
        let rc = unsafe { peer_new_external([4u8; 32].as_ptr(), c"127.0.0.1".as_ptr(), 4002, 5, &mut p) };
        assert_eq!(rc, PEER_OK);
        let (secret, _) = crate::sign::keypair(&mut rand::rngs::OsRng);
        let (_, other_public) = crate::sign::keypair(&mut rand::rngs::OsRng);
        let (key, value) = ([1u8; 32], [2u8; 32]);
        let mut sig = [0xEEu8; 64];
        let set = |secret: *const u8, sig: *mut u8| unsafe {
            peer_namespace_set(p, secret, other_public.as_ptr(), key.as_ptr(), value.as_ptr(), sig)
        };
        assert_eq!(set(secret.as_ptr(), sig.as_mut_ptr()), PEER_ERR_KEY_MISMATCH);
        assert!(last_error_text().contains("secret key does not match"), "{}", last_error_text());
        assert_eq!(set(secret.as_ptr(), ptr::null_mut()), PEER_ERR_KEY_MISMATCH);
        assert_eq!(set(ptr::null(), sig.as_mut_ptr()), PEER_ERR_NULL);
        assert_eq!(sig, [0xEEu8; 64], "signature_out written on failure");
        peer_free(p);
    }
}
