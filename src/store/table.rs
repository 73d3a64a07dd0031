//! One table of held records (values, or namespace records) with lifetimes and bounds: every
//! entry expires at a set time, and a full table makes room by the eviction order of
//! PROTOCOL.md §6: the record farthest from our uid goes first (its key's nearer peers hold
//! it too, and lookups ask them first), then, among records equally far (the same bucket of
//! our table), the one soonest to expire. A newcomer that would itself come first in that
//! order is refused instead, so a flood of far keys cannot push out the keys we are
//! responsible for. Both orders are indexed, so every operation is O(log n).
//!
//! Each entry remembers its source (`quota::Origin`); past a quarter full, a newcomer whose
//! source holds its share already is refused (`consts::QUOTA_*`), so one source cannot
//! fill the table and, by eviction, push out what others stored.

use super::quota::{Origin, Usage};
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// An entry of a table: the record, when it expires, and when a store last refreshed it.
pub(crate) struct Entry<V> {
    pub item: V,
    pub expires_at: u64,
    /// When a store request (publisher or holder) last carried it: holder maintenance skips
    /// what was refreshed within its interval (the Kademlia paper's optimisation).
    pub refreshed_at: u64,
    /// Leading zero bits of (key XOR our uid): the larger, the nearer.
    closeness: u32,
    size: usize,
    origin: Origin,
}

/// Count and byte bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub count: usize,
    pub bytes: usize,
}

pub(crate) struct Table<K, V> {
    bounds: Bounds,
    entries: HashMap<K, Entry<V>>,
    bytes: usize,
    by_expiry: BTreeSet<(u64, K)>,
    /// (closeness, expires_at, key): the first is the next to evict.
    by_eviction: BTreeSet<(u32, u64, K)>,
    usage: Usage,
}

impl<K: Copy + Ord + Hash, V> Table<K, V> {
    pub fn new(bounds: Bounds) -> Self {
        Table {
            bounds,
            entries: HashMap::new(),
            bytes: 0,
            by_expiry: BTreeSet::new(),
            by_eviction: BTreeSet::new(),
            usage: Usage::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The live entry under `k` at `now`.
    pub fn get(&self, k: &K, now: u64) -> Option<&Entry<V>> {
        self.entries.get(k).filter(|e| e.expires_at > now)
    }

    pub fn get_mut(&mut self, k: &K, now: u64) -> Option<&mut V> {
        self.entries.get_mut(k).filter(|e| e.expires_at > now).map(|e| &mut e.item)
    }

    /// Every entry, live or not yet swept.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Entry<V>)> {
        self.entries.iter()
    }

    /// A store carried `k` again at `now`: its expiry becomes `expires_at` when `extend` is
    /// false, the later of both when true. Returns whether the expiry changed.
    pub fn refresh(&mut self, k: &K, expires_at: u64, now: u64, extend: bool) -> bool {
        let Some(e) = self.entries.get_mut(k) else { return false };
        e.refreshed_at = now;
        let new = if extend { e.expires_at.max(expires_at) } else { expires_at };
        if new == e.expires_at {
            return false;
        }
        self.by_expiry.remove(&(e.expires_at, *k));
        self.by_eviction.remove(&(e.closeness, e.expires_at, *k));
        e.expires_at = new;
        self.by_expiry.insert((new, *k));
        self.by_eviction.insert((e.closeness, new, *k));
        true
    }

    /// Mark `k` refreshed at `now` without changing its expiry.
    pub fn touch(&mut self, k: &K, now: u64) {
        if let Some(e) = self.entries.get_mut(k) {
            e.refreshed_at = now;
        }
    }

    /// Insert a new entry from `origin` (the caller checked `k` is absent), evicting by the
    /// table's order to make room (expired entries first); the keys that left are pushed to
    /// `evicted`. False (nothing changed) when it does not fit: larger than the bounds, past
    /// its source's quota, or first in the eviction order itself.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        k: K,
        item: V,
        size: usize,
        closeness: u32,
        expires_at: u64,
        now: u64,
        origin: Origin,
        evicted: &mut Vec<K>,
    ) -> bool {
        if expires_at <= now || size > self.bounds.bytes || self.bounds.count == 0 {
            return false;
        }
        // Expired entries make room first, whatever their place in the eviction order.
        self.expire(now, evicted);
        let (held, bounds) = ((self.entries.len(), self.bytes), (self.bounds.count, self.bounds.bytes));
        if !self.usage.admits(&origin, size, held, bounds) {
            return false;
        }
        // Find the victims first: refuse before evicting anything if one outranks us.
        let (mut count, mut bytes) = (self.entries.len() + 1, self.bytes + size);
        let mut victims = Vec::new();
        for &(c, exp, v) in &self.by_eviction {
            if count <= self.bounds.count && bytes <= self.bounds.bytes {
                break;
            }
            if (c, exp) >= (closeness, expires_at) {
                return false;
            }
            victims.push(v);
            count -= 1;
            bytes -= self.entries[&v].size;
        }
        for v in victims {
            self.remove(&v);
            evicted.push(v);
        }
        self.bytes += size;
        self.usage.add(&origin, size);
        self.by_expiry.insert((expires_at, k));
        self.by_eviction.insert((closeness, expires_at, k));
        self.entries.insert(k, Entry { item, expires_at, refreshed_at: now, closeness, size, origin });
        true
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let e = self.entries.remove(k)?;
        self.bytes -= e.size;
        self.usage.remove(&e.origin, e.size);
        self.by_expiry.remove(&(e.expires_at, *k));
        self.by_eviction.remove(&(e.closeness, e.expires_at, *k));
        Some(e.item)
    }

    /// Drop every entry expired by `now`, pushing their keys to `gone`.
    pub fn expire(&mut self, now: u64, gone: &mut Vec<K>) {
        while let Some(&(t, k)) = self.by_expiry.first() {
            if t > now {
                break;
            }
            self.remove(&k);
            gone.push(k);
        }
    }
}
