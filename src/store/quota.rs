//! Who stored a record, and how much each source holds (SECURITY.md, "storage floods"): the
//! table of held records checks a newcomer against `consts::QUOTA_*` with these counts.

use crate::consts::{QUOTA_FREE_SHARE, QUOTA_KEY_SHARE, QUOTA_PREFIX_SHARE};
use crate::diversity::{Diversity, Prefix};
use std::collections::HashMap;
use std::net::IpAddr;

/// The source of a stored record: its sender's static key (its first 8 bytes: a collision
/// needs 2^64 tries) and network prefix, each None when not counted (our own records, those
/// read back from disk, loopback under the default `Diversity`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Origin {
    key: Option<u64>,
    prefix: Option<Prefix>,
}

impl Origin {
    /// Not counted against any quota.
    pub const LOCAL: Origin = Origin { key: None, prefix: None };

    /// A record sent by the peer authenticated as `static_key` from `ip` (a zero key: a
    /// program-supplied transport, where the address stands for the key).
    pub fn remote(static_key: &[u8; 32], ip: IpAddr, d: &Diversity) -> Origin {
        let key = if *static_key == [0; 32] {
            let h = crate::id::Id::hash(ip.to_string().as_bytes()).0;
            u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
        } else {
            let k = static_key;
            u64::from_be_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]])
        };
        Origin { key: Some(key), prefix: d.counts(ip).then(|| Prefix::of(ip)) }
    }
}

/// Count and bytes.
#[derive(Clone, Copy, Default, Debug)]
struct Use {
    count: usize,
    bytes: usize,
}

/// What each counted source holds in one table.
#[derive(Default)]
pub(crate) struct Usage {
    by_key: HashMap<u64, Use>,
    by_prefix: HashMap<Prefix, Use>,
}

impl Usage {
    /// Whether a new record of `size` bytes from `o` fits its quotas, in a table holding
    /// (`count`, `bytes`) of the bounds (`max_count`, `max_bytes`).
    pub fn admits(&self, o: &Origin, size: usize, (count, bytes): (usize, usize), (max_count, max_bytes): (usize, usize)) -> bool {
        if count < max_count / QUOTA_FREE_SHARE && bytes + size <= max_bytes / QUOTA_FREE_SHARE {
            return true;
        }
        // A source may always hold one record, however small the bounds (tests use tiny ones).
        let within = |u: Option<&Use>, share: usize| {
            let u = u.copied().unwrap_or_default();
            u.count < (max_count / share).max(1) && u.bytes + size <= (max_bytes / share).max(size)
        };
        o.key.is_none_or(|k| within(self.by_key.get(&k), QUOTA_KEY_SHARE))
            && o.prefix.is_none_or(|p| within(self.by_prefix.get(&p), QUOTA_PREFIX_SHARE))
    }

    pub fn add(&mut self, o: &Origin, size: usize) {
        if let Some(k) = o.key {
            let u = self.by_key.entry(k).or_default();
            u.count += 1;
            u.bytes += size;
        }
        if let Some(p) = o.prefix {
            let u = self.by_prefix.entry(p).or_default();
            u.count += 1;
            u.bytes += size;
        }
    }

    pub fn remove(&mut self, o: &Origin, size: usize) {
        fn take<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Use>, k: K, size: usize) {
            if let Some(u) = m.get_mut(&k) {
                u.count -= 1;
                u.bytes -= size;
                if u.count == 0 {
                    m.remove(&k);
                }
            }
        }
        if let Some(k) = o.key {
            take(&mut self.by_key, k, size);
        }
        if let Some(p) = o.prefix {
            take(&mut self.by_prefix, p, size);
        }
    }
}
