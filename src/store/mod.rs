//! What a peer keeps for others: content-addressed values, bags and namespace records.
//! Behind the small `Store` trait so a persistent store can replace `MemStore` later.
//! Time comes in as an argument (microseconds on the core's clock); nothing here reads a clock.
//! `MemStore` never lets its time run backwards: a `now` earlier than one already seen is
//! taken as that one, so a clock step cannot resurrect expired entries or break the orderings.
//!
//! Values: key -> bytes, bounded in count and bytes; a full store refuses. They do not expire
//! yet (republishing is a later issue); each keeps its insertion time for that.
//!
//! Bags (distinct-publisher popularity, bounds and eviction, expiry) are in `bags`.
//!
//! Namespaces (PROTOCOL.md §6): a record for (public key, key) replaces the stored one when its seq
//! is greater; with equal seq, the same value is a refresh (accepted), and a different value
//! wins only if `sign::newer` says so (the larger signature), a deterministic tie-break so
//! peers that saw racing writers in different orders keep the same record. The cheap seq
//! checks run before the costly signature check, so a flood of stale records costs little;
//! such a record is refused as `Stale` even if its signature is also bad.

mod bags;
pub mod kept;

use crate::consts;
use crate::id::Id;
use crate::sign;
use crate::wire::{BagEntry, BagKind, NamespaceRecord};
use bags::{BagLimits, Bags};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a namespace record was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NamespaceRefusal {
    BadSignature,
    /// A record with a higher seq (or equal seq and a winning signature) is stored.
    Stale,
    Full,
}

pub trait Store: Send {
    /// Store `value` under `key` (the caller checked key == SHA-256(value)). False when full.
    fn put_value(&mut self, key: Id, value: Arc<[u8]>, now: u64) -> bool;
    /// The value stored under `key` (shared, not copied).
    fn get_value(&self, key: &Id) -> Option<Arc<[u8]>>;
    /// Record that `publisher` published `value` in the bag `key` at `now`. False when the
    /// entry could not be kept (bag and total bounds, after evicting what they allow).
    fn bag_add(&mut self, key: Id, value: [u8; 32], publisher: [u8; 32], now: u64) -> bool;
    /// At most `max` live entries of the bag `key`, in the order `kind` asks for.
    /// `rand` supplies randomness for sampling (a fresh u64 each call).
    fn bag_query(
        &mut self,
        key: &Id,
        kind: BagKind,
        max: usize,
        now: u64,
        rand: &mut dyn FnMut() -> u64,
    ) -> Vec<BagEntry>;
    /// Verify and store a namespace record under the seq rules of PROTOCOL.md §6.
    fn namespace_put(&mut self, record: NamespaceRecord, now: u64) -> Result<(), NamespaceRefusal>;
    fn namespace_get(&self, public_key: &[u8; 32], key: &[u8; 32]) -> Option<NamespaceRecord>;
    /// Drop what has expired by `now`.
    fn expire(&mut self, now: u64);
    /// Counts for statistics: (values, value bytes, bag entries, namespace records).
    fn counts(&self) -> (usize, usize, usize, usize);
}

/// The bounds a `MemStore` enforces. `Limits::default()` is the protocol's (`consts`);
/// tests use small ones.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    pub max_values: usize,
    pub max_value_bytes: usize,
    pub bag_entry_ttl_us: u64,
    pub max_bag_entries_per_key: usize,
    pub max_bag_entries_total: usize,
    pub max_publishers_per_entry: usize,
    pub max_namespace_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_values: consts::MAX_VALUES,
            max_value_bytes: consts::MAX_VALUE_BYTES_TOTAL,
            bag_entry_ttl_us: consts::BAG_ENTRY_TTL_US,
            max_bag_entries_per_key: consts::MAX_BAG_ENTRIES_PER_KEY,
            max_bag_entries_total: consts::MAX_BAG_ENTRIES_TOTAL,
            max_publishers_per_entry: consts::MAX_PUBLISHERS_PER_ENTRY,
            max_namespace_records: consts::MAX_NAMESPACE_RECORDS,
        }
    }
}

struct StoredValue {
    bytes: Arc<[u8]>,
    /// For the later expiry/republish of values.
    #[allow(dead_code)]
    stored_at: u64,
}

struct StoredRecord {
    record: NamespaceRecord,
    /// Last accepted put (a refresh moves it), for a later expiry.
    #[allow(dead_code)]
    stored_at: u64,
}

/// The in-memory store. HashMap-based; no operation walks the whole store except the rare
/// amortized rebuild of the expiry heap.
pub struct MemStore {
    limits: Limits,
    /// Latest `now` seen: the store's time never runs backwards.
    now: u64,
    values: HashMap<Id, StoredValue>,
    value_bytes: usize,
    bags: Bags,
    namespaces: HashMap<([u8; 32], [u8; 32]), StoredRecord>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub fn new() -> MemStore {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> MemStore {
        MemStore {
            limits,
            now: 0,
            values: HashMap::new(),
            value_bytes: 0,
            bags: Bags::new(BagLimits {
                ttl_us: limits.bag_entry_ttl_us,
                per_key: limits.max_bag_entries_per_key,
                total: limits.max_bag_entries_total,
                publishers_per_entry: limits.max_publishers_per_entry,
            }),
            namespaces: HashMap::new(),
        }
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }
}

impl Store for MemStore {
    fn put_value(&mut self, key: Id, value: Arc<[u8]>, now: u64) -> bool {
        let now = self.tick(now);
        if self.values.contains_key(&key) {
            return true;
        }
        if self.values.len() >= self.limits.max_values
            || self.value_bytes.saturating_add(value.len()) > self.limits.max_value_bytes
        {
            return false;
        }
        self.value_bytes += value.len();
        self.values.insert(key, StoredValue { bytes: value, stored_at: now });
        true
    }

    fn get_value(&self, key: &Id) -> Option<Arc<[u8]>> {
        self.values.get(key).map(|v| v.bytes.clone())
    }

    fn bag_add(&mut self, key: Id, value: [u8; 32], publisher: [u8; 32], now: u64) -> bool {
        let now = self.tick(now);
        self.bags.add(key, value, publisher, now)
    }

    fn bag_query(&mut self, key: &Id, kind: BagKind, max: usize, now: u64, rand: &mut dyn FnMut() -> u64) -> Vec<BagEntry> {
        let now = self.tick(now);
        self.bags.query(key, kind, max, now, rand)
    }

    fn namespace_put(&mut self, r: NamespaceRecord, now: u64) -> Result<(), NamespaceRefusal> {
        let now = self.tick(now);
        let slot = (r.public_key, r.key);
        let full = self.namespaces.len() >= self.limits.max_namespace_records;
        let keep_old = match self.namespaces.get_mut(&slot) {
            Some(old) if old.record == r => {
                old.stored_at = now; // byte-identical: verified when first stored
                return Ok(());
            }
            Some(old) => {
                let o = &old.record;
                let refresh = r.seq == o.seq && r.value == o.value;
                if !(r.seq > o.seq || refresh || (r.seq == o.seq && sign::newer(&r, o))) {
                    return Err(NamespaceRefusal::Stale);
                }
                // A refresh whose signature differs: keep the tie-break's winner.
                refresh && !sign::newer(&r, o)
            }
            None if full => return Err(NamespaceRefusal::Full),
            None => false,
        };
        if !sign::verify(&r) {
            return Err(NamespaceRefusal::BadSignature);
        }
        let stored = self.namespaces.entry(slot).or_insert(StoredRecord { record: r, stored_at: now });
        if !keep_old {
            stored.record = r;
        }
        stored.stored_at = now;
        Ok(())
    }

    fn namespace_get(&self, public_key: &[u8; 32], key: &[u8; 32]) -> Option<NamespaceRecord> {
        self.namespaces.get(&(*public_key, *key)).map(|s| s.record)
    }

    fn expire(&mut self, now: u64) {
        let now = self.tick(now);
        self.bags.expire(now);
    }

    fn counts(&self) -> (usize, usize, usize, usize) {
        (self.values.len(), self.value_bytes, self.bags.len(), self.namespaces.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn values_are_bounded_in_count_and_bytes() {
        let mut s = MemStore::with_limits(Limits { max_values: 2, max_value_bytes: 10, ..Limits::default() });
        assert!(s.put_value(Id([1; 32]), vec![1; 4].into(), 0));
        assert!(s.put_value(Id([1; 32]), vec![1; 4].into(), 1), "storing again is a no-op true");
        assert_eq!(s.counts(), (1, 4, 0, 0));
        assert!(!s.put_value(Id([2; 32]), vec![2; 7].into(), 2), "bytes bound");
        assert!(s.put_value(Id([2; 32]), vec![2; 6].into(), 2));
        assert!(!s.put_value(Id([3; 32]), vec![].into(), 3), "count bound");
        assert_eq!(s.counts(), (2, 10, 0, 0));
        assert_eq!(s.get_value(&Id([2; 32])).as_deref(), Some(&[2; 6][..]));
        assert_eq!(s.get_value(&Id([3; 32])), None);
    }

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(5)
    }

    #[test]
    fn namespace_valid_record_is_stored_and_forgeries_refused() {
        let mut rng = rng();
        let (sk, pk) = sign::keypair(&mut rng);
        let (_, other_pk) = sign::keypair(&mut rng);
        let mut s = MemStore::new();
        let r = sign::sign(&sk, pk, [1; 32], [2; 32], 10);
        assert_eq!(s.namespace_put(r, 0), Ok(()));
        assert_eq!(s.namespace_get(&pk, &[1; 32]), Some(r));
        assert_eq!(s.namespace_get(&pk, &[2; 32]), None);
        // Forged: a higher seq with a tampered signature.
        let mut forged = sign::sign(&sk, pk, [1; 32], [3; 32], 11);
        forged.signature[5] ^= 1;
        assert_eq!(s.namespace_put(forged, 1), Err(NamespaceRefusal::BadSignature));
        // A record claiming another public key than the one that signed it.
        let mut wrong_key = sign::sign(&sk, pk, [1; 32], [3; 32], 12);
        wrong_key.public_key = other_pk;
        assert_eq!(s.namespace_put(wrong_key, 2), Err(NamespaceRefusal::BadSignature));
        assert_eq!(s.namespace_get(&other_pk, &[1; 32]), None);
        assert_eq!(s.namespace_get(&pk, &[1; 32]), Some(r));
        assert_eq!(s.counts().3, 1);
    }

    #[test]
    fn namespace_seq_rules() {
        let (sk, pk) = sign::keypair(&mut rng());
        let mut s = MemStore::new();
        let r5 = sign::sign(&sk, pk, [1; 32], [5; 32], 5);
        let r4 = sign::sign(&sk, pk, [1; 32], [4; 32], 4);
        assert_eq!(s.namespace_put(r5, 0), Ok(()));
        assert_eq!(s.namespace_put(r4, 1), Err(NamespaceRefusal::Stale), "rollback");
        assert_eq!(s.namespace_get(&pk, &[1; 32]), Some(r5));
        assert_eq!(s.namespace_put(r5, 2), Ok(()), "equal seq, same value: refresh");
        let r6 = sign::sign(&sk, pk, [1; 32], [6; 32], 6);
        assert_eq!(s.namespace_put(r6, 3), Ok(()));
        assert_eq!(s.namespace_get(&pk, &[1; 32]), Some(r6));
    }

    #[test]
    fn namespace_equal_seq_tie_break_converges() {
        let (sk, pk) = sign::keypair(&mut rng());
        let a = sign::sign(&sk, pk, [1; 32], [0xA; 32], 7);
        let b = sign::sign(&sk, pk, [1; 32], [0xB; 32], 7);
        let (win, lose) = if sign::newer(&a, &b) { (a, b) } else { (b, a) };
        let mut s1 = MemStore::new();
        assert_eq!(s1.namespace_put(lose, 0), Ok(()));
        assert_eq!(s1.namespace_put(win, 1), Ok(()));
        let mut s2 = MemStore::new();
        assert_eq!(s2.namespace_put(win, 0), Ok(()));
        assert_eq!(s2.namespace_put(lose, 1), Err(NamespaceRefusal::Stale));
        assert_eq!(s1.namespace_get(&pk, &[1; 32]), Some(win));
        assert_eq!(s2.namespace_get(&pk, &[1; 32]), Some(win));
    }

    #[test]
    fn namespace_records_are_bounded() {
        let (sk, pk) = sign::keypair(&mut rng());
        let mut s = MemStore::with_limits(Limits { max_namespace_records: 1, ..Limits::default() });
        assert_eq!(s.namespace_put(sign::sign(&sk, pk, [1; 32], [1; 32], 1), 0), Ok(()));
        assert_eq!(s.namespace_put(sign::sign(&sk, pk, [2; 32], [1; 32], 1), 0), Err(NamespaceRefusal::Full));
        assert_eq!(s.namespace_put(sign::sign(&sk, pk, [1; 32], [2; 32], 2), 0), Ok(()), "updates still fit");
        assert_eq!(s.counts().3, 1);
    }
    #[test]
    fn time_never_runs_backwards() {
        const TTL: u64 = consts::BAG_ENTRY_TTL_US;
        let (key, value, publisher) = (Id([7; 32]), [1; 32], [0xAA; 32]);
        let mut s = MemStore::new();
        let mut never = || -> u64 { panic!("only sampling draws") };
        assert!(s.bag_add(key, value, publisher, 0));
        s.expire(TTL);
        // A publish stamped before the store's time counts from the store's time.
        assert!(s.bag_add(key, value, publisher, 5));
        assert_eq!(s.bag_query(&key, BagKind::Popular, 20, 10, &mut never)[0].seconds, 0);
        assert_eq!(s.bag_query(&key, BagKind::Popular, 20, 2 * TTL - 1, &mut never).len(), 1);
    }
}
