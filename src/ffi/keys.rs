//! Keys and identifiers made locally: an Ed25519 key pair for namespaces (peer_keypair)
//! and a random uid (peer_random_uid).

use super::support::{guard_or, set_last_error, write_bytes};
use crate::id::Id;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

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
}
