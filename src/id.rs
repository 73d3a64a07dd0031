//! 256-bit identifiers (uids, keys, public keys) and the XOR metric.

use crate::consts::ID_LEN;
use sha2::{Digest, Sha256};
use std::fmt;

/// A uid, key or public key: 32 bytes, compared as a big-endian unsigned integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; ID_LEN]);

impl Id {
    /// All zero bits.
    pub const ZERO: Id = Id([0; ID_LEN]);

    /// The id in `b`, if it is exactly 32 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Id> {
        <[u8; ID_LEN]>::try_from(b).ok().map(Id)
    }

    /// SHA-256 of `data`: the key of a value.
    pub fn hash(data: &[u8]) -> Id {
        Id(Sha256::digest(data).into())
    }

    /// SHA-256 of the concatenation of `parts` (namespace placement hashes pk || key).
    pub fn hash_parts(parts: &[&[u8]]) -> Id {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Id(h.finalize().into())
    }

    /// A uniformly random id.
    pub fn random<R: rand::RngCore + ?Sized>(rng: &mut R) -> Id {
        let mut b = [0u8; ID_LEN];
        rng.fill_bytes(&mut b);
        Id(b)
    }

    /// XOR distance; `Ord` on the result is the Kademlia metric.
    pub fn distance(&self, other: &Id) -> Id {
        let mut d = [0u8; ID_LEN];
        for (i, x) in d.iter_mut().enumerate() {
            *x = self.0[i] ^ other.0[i];
        }
        Id(d)
    }

    /// Number of leading bits `self` and `other` share: 0..=255, or None when equal.
    /// Bucket i of a routing table holds contacts sharing exactly i leading bits with us.
    pub fn common_prefix(&self, other: &Id) -> Option<usize> {
        for i in 0..ID_LEN {
            let x = self.0[i] ^ other.0[i];
            if x != 0 {
                return Some(i * 8 + x.leading_zeros() as usize);
            }
        }
        None
    }

    /// A random id sharing exactly `prefix` leading bits with `self` (for bucket refresh).
    pub fn random_in_bucket<R: rand::RngCore + ?Sized>(&self, prefix: usize, rng: &mut R) -> Id {
        let mut out = Id::random(rng).0;
        for bit in 0..=prefix.min(255) {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let mine = self.0[byte] & mask;
            let want = if bit == prefix { mine ^ mask } else { mine };
            out[byte] = (out[byte] & !mask) | want;
        }
        Id(out)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{:02x}", b)?;
        }
        write!(f, "…")
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{:02x}", b)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn prefix_and_bucket_ids() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let me = Id::random(&mut rng);
        assert_eq!(me.common_prefix(&me), None);
        for p in [0usize, 1, 7, 8, 9, 100, 255] {
            for _ in 0..20 {
                let x = me.random_in_bucket(p, &mut rng);
                assert_eq!(me.common_prefix(&x), Some(p));
            }
        }
    }

    #[test]
    fn distance_orders_big_endian() {
        let a = Id([0; 32]);
        let mut b = [0u8; 32];
        b[0] = 1;
        let mut c = [0u8; 32];
        c[31] = 0xff;
        assert!(a.distance(&Id(c)) < a.distance(&Id(b)));
    }
}

/// What we know of another peer: its uid, where it listens, and its Noise static key
/// (all zero for a peer on a program-supplied transport, which has none).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Contact {
    /// Its uid.
    pub id: Id,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its Noise static public key.
    pub static_key: [u8; 32],
}
