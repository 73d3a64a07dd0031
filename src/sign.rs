//! Ed25519 for namespaces: the signed bytes of PROTOCOL.md §4, signing and verification.

use crate::id::Id;
use crate::wire::NamespaceRecord;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

const DOMAIN: &[u8] = b"peer-namespace-v1";

/// Where a namespace record lives: SHA-256(public-key || key).
pub fn ns_target(public_key: &[u8; 32], key: &[u8; 32]) -> Id {
    Id::hash_parts(&[public_key, key])
}

/// `"peer-namespace-v1" || key || seq (u64 big-endian) || value`
pub fn signed_bytes(key: &[u8; 32], seq: u64, value: &[u8; 32]) -> [u8; 17 + 32 + 8 + 32] {
    let mut m = [0u8; 17 + 32 + 8 + 32];
    m[..17].copy_from_slice(DOMAIN);
    m[17..49].copy_from_slice(key);
    m[49..57].copy_from_slice(&seq.to_be_bytes());
    m[57..].copy_from_slice(value);
    m
}

/// A fresh key pair: (secret, public).
pub fn keypair<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> ([u8; 32], [u8; 32]) {
    let sk = SigningKey::generate(rng);
    (sk.to_bytes(), sk.verifying_key().to_bytes())
}

/// The public key of an Ed25519 secret key.
pub fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// Sign a record; the caller has checked that `secret` belongs to `public_key`.
pub fn sign(secret: &[u8; 32], public_key: [u8; 32], key: [u8; 32], value: [u8; 32], seq: u64) -> NamespaceRecord {
    let sk = SigningKey::from_bytes(secret);
    let signature = sk.sign(&signed_bytes(&key, seq, &value)).to_bytes();
    NamespaceRecord { public_key, key, value, signature, seq }
}

/// True when the record's signature is valid for its public key (strict verification:
/// no malleable signatures, no small-order keys).
pub fn verify(r: &NamespaceRecord) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&r.public_key) else { return false };
    let sig = Signature::from_bytes(&r.signature);
    vk.verify_strict(&signed_bytes(&r.key, r.seq, &r.value), &sig).is_ok()
}

/// Which of two valid records for the same (public key, key) wins: higher seq, then the
/// larger signature bytes, so every peer and reader picks the same one.
pub fn newer(a: &NamespaceRecord, b: &NamespaceRecord) -> bool {
    (a.seq, a.signature) > (b.seq, b.signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sign_verify_and_tamper() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (sk, pk) = keypair(&mut rng);
        assert_eq!(public_of(&sk), pk);
        let r = sign(&sk, pk, [1; 32], [2; 32], 42);
        assert!(verify(&r));
        let mut bad = r;
        bad.seq = 43;
        assert!(!verify(&bad));
        let mut bad = r;
        bad.value[0] ^= 1;
        assert!(!verify(&bad));
        let (_, other) = keypair(&mut rng);
        let mut bad = r;
        bad.public_key = other;
        assert!(!verify(&bad));
    }
}
