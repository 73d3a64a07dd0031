//! What a peer keeps for others: content-addressed values, bags and namespace records.
//! Behind the small `Store` trait so a persistent store can replace `MemStore` later.
//! Time comes in as an argument (microseconds on the core's clock); nothing here reads a clock.
//! `MemStore` never lets its time run backwards: a `now` earlier than one already seen is
//! taken as that one, so a clock step cannot resurrect expired entries or break the orderings.
//!
//! Values (key -> bytes) and namespace records live in `table::Table`s: each record expires
//! at a time its store carried (PROTOCOL.md §6: a publisher's store gives the full lifetime,
//! a holder's re-store the time left), and a full table evicts by the order `table` documents
//! (farthest from our uid first, then soonest to expire) instead of refusing forever.
//! A read never returns an expired record, swept or not.
//!
//! With a journal on (`journal`), every change to what a data directory must keep (a held
//! record stored, refreshed, expired or evicted) is queued for `take_changes`; the driver
//! writes them to disk. Bag entries are not journaled: they live 30 minutes and their
//! publishers re-announce them every `BAG_REPUBLISH_US`.
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
mod quota;
mod table;

use crate::consts;
use crate::id::Id;
use crate::sign;
use crate::wire::{BagEntry, BagKind, NamespaceRecord};
use bags::{BagLimits, Bags};
use kept::{Change, Held, HeldKey};
use std::sync::Arc;
use table::{Bounds, Table};

pub use quota::Origin;

/// Why a namespace record was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NamespaceRefusal {
    BadSignature,
    /// A record with a higher seq (or equal seq and a winning signature) is stored.
    Stale,
    Full,
}

pub trait Store: Send {
    /// Store `value` under `key` (the caller checked key == SHA-256(value)) until
    /// `expires_at`, sent by `origin`; storing it again keeps the later expiry. False when it
    /// does not fit (bounds, or `origin`'s quota).
    fn put_value(&mut self, key: Id, value: Arc<[u8]>, now: u64, expires_at: u64, origin: Origin) -> bool;
    /// The live value stored under `key` (shared, not copied).
    fn get_value(&self, key: &Id, now: u64) -> Option<Arc<[u8]>>;
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
    /// Verify and store a namespace record under the seq rules of PROTOCOL.md §6, until
    /// `expires_at` (a refresh keeps the later expiry; a newer record brings its own).
    /// `origin` as for `put_value`.
    fn namespace_put(&mut self, record: NamespaceRecord, now: u64, expires_at: u64, origin: Origin) -> Result<(), NamespaceRefusal>;
    /// The live record under (public key, key).
    fn namespace_get(&self, public_key: &[u8; 32], key: &[u8; 32], now: u64) -> Option<NamespaceRecord>;
    /// Drop what has expired by `now`.
    fn expire(&mut self, now: u64);
    /// Counts for statistics: (values, value bytes, bag entries, namespace records).
    fn counts(&self) -> (usize, usize, usize, usize);
    /// Visit every held value and namespace record: (its key, its target in the id space,
    /// when a store last refreshed it, when it expires).
    fn visit_held(&self, f: &mut dyn FnMut(HeldKey, Id, u64, u64));
    /// The live record under `k`, with its expiry.
    fn get_held(&self, k: &HeldKey, now: u64) -> Option<Held>;
    /// Count `k` as refreshed at `now` (maintenance looked at it), its expiry unchanged.
    fn touch(&mut self, k: &HeldKey, now: u64);
    /// Drop the record `k` (a displaced holder handed it to the nearer ones).
    fn remove(&mut self, k: &HeldKey);
    /// Put back a record read from a data directory (not journaled). False when it does not
    /// fit or fails its checks.
    fn restore(&mut self, h: Held, now: u64) -> bool;
    /// Start (or stop) queueing changes for `take_changes`.
    fn journal(&mut self, on: bool);
    /// The changes queued since the last call, oldest first.
    fn take_changes(&mut self) -> Vec<Change>;
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

/// Bytes a namespace record counts for in its table's byte bound (unbounded in practice:
/// the count bounds it).
const RECORD_SIZE: usize = 32 * 3 + 64 + 8;

/// The in-memory store. No operation walks the whole store but `visit_held`.
pub struct MemStore {
    me: Id,
    /// Latest `now` seen: the store's time never runs backwards.
    now: u64,
    values: Table<Id, Arc<[u8]>>,
    bags: Bags,
    namespaces: Table<([u8; 32], [u8; 32]), NamespaceRecord>,
    changes: Option<Vec<Change>>,
}

/// Leading zero bits of `target` XOR `me`: which bucket of our table the target falls in.
fn closeness(me: &Id, target: &Id) -> u32 {
    me.common_prefix(target).map_or(256, |b| b as u32)
}

impl MemStore {
    /// The store of the peer `me` (eviction keeps what is nearest to it).
    pub fn new(me: Id) -> MemStore {
        Self::with_limits(me, Limits::default())
    }

    pub fn with_limits(me: Id, limits: Limits) -> MemStore {
        MemStore {
            me,
            now: 0,
            values: Table::new(Bounds { count: limits.max_values, bytes: limits.max_value_bytes }),
            bags: Bags::new(BagLimits {
                ttl_us: limits.bag_entry_ttl_us,
                per_key: limits.max_bag_entries_per_key,
                total: limits.max_bag_entries_total,
                publishers_per_entry: limits.max_publishers_per_entry,
            }),
            namespaces: Table::new(Bounds {
                count: limits.max_namespace_records,
                bytes: limits.max_namespace_records.saturating_mul(RECORD_SIZE),
            }),
            changes: None,
        }
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }

    fn log(&mut self, f: impl FnOnce(&Self) -> Option<Change>) {
        if self.changes.is_none() {
            return;
        }
        if let Some(c) = f(self) {
            self.changes.get_or_insert_with(Vec::new).push(c);
        }
    }

    fn log_held(&mut self, k: HeldKey) {
        let now = self.now;
        self.log(|s| s.get_held(&k, now).map(Change::Held));
    }

    fn log_gone(&mut self, gone: impl IntoIterator<Item = HeldKey>) {
        if let Some(c) = &mut self.changes {
            c.extend(gone.into_iter().map(Change::HeldGone));
        }
    }

    fn insert_value(&mut self, key: Id, value: Arc<[u8]>, now: u64, expires_at: u64, origin: Origin) -> bool {
        let mut evicted = Vec::new();
        let size = value.len();
        let ok = self.values.insert(key, value, size, closeness(&self.me, &key), expires_at, now, origin, &mut evicted);
        self.log_gone(evicted.into_iter().map(HeldKey::Value));
        ok
    }

    fn insert_record(&mut self, r: NamespaceRecord, now: u64, expires_at: u64, origin: Origin) -> bool {
        let mut evicted = Vec::new();
        let c = closeness(&self.me, &sign::ns_target(&r.public_key, &r.key));
        let slot = (r.public_key, r.key);
        let ok = self.namespaces.insert(slot, r, RECORD_SIZE, c, expires_at, now, origin, &mut evicted);
        self.log_gone(evicted.into_iter().map(|(p, k)| HeldKey::Record(p, k)));
        ok
    }
}

impl Store for MemStore {
    fn put_value(&mut self, key: Id, value: Arc<[u8]>, now: u64, expires_at: u64, origin: Origin) -> bool {
        let now = self.tick(now);
        // Journaled only when what a data directory keeps changed (the record or its expiry):
        // an hourly republish that changes nothing costs no disk write.
        let (ok, changed) = if self.values.get(&key, now).is_some() {
            (true, self.values.refresh(&key, expires_at, now, true))
        } else {
            self.values.remove(&key); // expired, not yet swept
            let ok = self.insert_value(key, value, now, expires_at, origin);
            (ok, ok)
        };
        if changed {
            self.log_held(HeldKey::Value(key));
        }
        ok
    }

    fn get_value(&self, key: &Id, now: u64) -> Option<Arc<[u8]>> {
        self.values.get(key, now.max(self.now)).map(|e| e.item.clone())
    }

    fn bag_add(&mut self, key: Id, value: [u8; 32], publisher: [u8; 32], now: u64) -> bool {
        let now = self.tick(now);
        self.bags.add(key, value, publisher, now)
    }

    fn bag_query(&mut self, key: &Id, kind: BagKind, max: usize, now: u64, rand: &mut dyn FnMut() -> u64) -> Vec<BagEntry> {
        let now = self.tick(now);
        self.bags.query(key, kind, max, now, rand)
    }

    fn namespace_put(&mut self, r: NamespaceRecord, now: u64, expires_at: u64, origin: Origin) -> Result<(), NamespaceRefusal> {
        let now = self.tick(now);
        let slot = (r.public_key, r.key);
        let keep_old = match self.namespaces.get(&slot, now).map(|e| e.item) {
            Some(old) if old == r => {
                // Byte-identical: verified when first stored.
                if self.namespaces.refresh(&slot, expires_at, now, true) {
                    self.log_held(HeldKey::Record(r.public_key, r.key));
                }
                return Ok(());
            }
            Some(o) => {
                let refresh = r.seq == o.seq && r.value == o.value;
                if !(r.seq > o.seq || refresh || (r.seq == o.seq && sign::newer(&r, &o))) {
                    return Err(NamespaceRefusal::Stale);
                }
                // A refresh whose signature differs: keep the tie-break's winner.
                Some((refresh && !sign::newer(&r, &o), refresh))
            }
            None => None,
        };
        if !sign::verify(&r) {
            return Err(NamespaceRefusal::BadSignature);
        }
        match keep_old {
            Some((keep, refresh)) => {
                if !keep {
                    *self.namespaces.get_mut(&slot, now).expect("live above") = r;
                }
                // A newer record brings its own lifetime; a refresh extends.
                let longer = self.namespaces.refresh(&slot, expires_at, now, refresh);
                if keep && !longer {
                    return Ok(()); // nothing a data directory keeps changed
                }
            }
            None => {
                self.namespaces.remove(&slot); // expired, not yet swept
                if !self.insert_record(r, now, expires_at, origin) {
                    return Err(NamespaceRefusal::Full);
                }
            }
        }
        self.log_held(HeldKey::Record(r.public_key, r.key));
        Ok(())
    }

    fn namespace_get(&self, public_key: &[u8; 32], key: &[u8; 32], now: u64) -> Option<NamespaceRecord> {
        self.namespaces.get(&(*public_key, *key), now.max(self.now)).map(|e| e.item)
    }

    fn expire(&mut self, now: u64) {
        let now = self.tick(now);
        self.bags.expire(now);
        let (mut values, mut records) = (Vec::new(), Vec::new());
        self.values.expire(now, &mut values);
        self.namespaces.expire(now, &mut records);
        self.log_gone(values.into_iter().map(HeldKey::Value));
        self.log_gone(records.into_iter().map(|(p, k)| HeldKey::Record(p, k)));
    }

    fn counts(&self) -> (usize, usize, usize, usize) {
        (self.values.len(), self.values.bytes(), self.bags.len(), self.namespaces.len())
    }

    fn visit_held(&self, f: &mut dyn FnMut(HeldKey, Id, u64, u64)) {
        for (k, e) in self.values.iter() {
            f(HeldKey::Value(*k), *k, e.refreshed_at, e.expires_at);
        }
        for ((p, k), e) in self.namespaces.iter() {
            f(HeldKey::Record(*p, *k), sign::ns_target(p, k), e.refreshed_at, e.expires_at);
        }
    }

    fn get_held(&self, k: &HeldKey, now: u64) -> Option<Held> {
        let now = now.max(self.now);
        match k {
            HeldKey::Value(key) => {
                self.values.get(key, now).map(|e| Held::Value { key: *key, value: e.item.clone(), expires_at: e.expires_at })
            }
            HeldKey::Record(p, key) => {
                self.namespaces.get(&(*p, *key), now).map(|e| Held::Record { record: e.item, expires_at: e.expires_at })
            }
        }
    }

    fn touch(&mut self, k: &HeldKey, now: u64) {
        let now = self.tick(now);
        match k {
            HeldKey::Value(key) => self.values.touch(key, now),
            HeldKey::Record(p, key) => self.namespaces.touch(&(*p, *key), now),
        }
    }

    fn remove(&mut self, k: &HeldKey) {
        let gone = match k {
            HeldKey::Value(key) => self.values.remove(key).is_some(),
            HeldKey::Record(p, key) => self.namespaces.remove(&(*p, *key)).is_some(),
        };
        if gone {
            self.log_gone([*k]);
        }
    }

    fn restore(&mut self, h: Held, now: u64) -> bool {
        let now = self.tick(now);
        let journal = self.changes.take();
        let ok = match h {
            Held::Value { key, value, expires_at } => {
                Id::hash(&value) == key && self.values.get(&key, now).is_none() && {
                    self.values.remove(&key);
                    self.insert_value(key, value, now, expires_at, Origin::LOCAL)
                }
            }
            Held::Record { record, expires_at } => {
                sign::verify(&record) && self.namespaces.get(&(record.public_key, record.key), now).is_none() && {
                    self.namespaces.remove(&(record.public_key, record.key));
                    self.insert_record(record, now, expires_at, Origin::LOCAL)
                }
            }
        };
        self.changes = journal;
        ok
    }

    fn journal(&mut self, on: bool) {
        match (on, &self.changes) {
            (true, None) => self.changes = Some(Vec::new()),
            (false, _) => self.changes = None,
            _ => {}
        }
    }

    fn take_changes(&mut self) -> Vec<Change> {
        match &mut self.changes {
            Some(c) => std::mem::take(c),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// An expiry no test reaches.
    const NEVER: u64 = u64::MAX;

    #[test]
    fn values_are_bounded_and_evict_far_then_soon_to_expire() {
        // Our uid is 0: a key's closeness is its leading zero bits.
        let (near, mid, far) = (Id([0x01; 32]), Id([0x10; 32]), Id([0x80; 32]));
        let mut s = MemStore::with_limits(Id::ZERO, Limits { max_values: 2, max_value_bytes: 10, ..Limits::default() });
        assert!(s.put_value(mid, vec![1; 4].into(), 0, 100, Origin::LOCAL));
        assert!(s.put_value(mid, vec![1; 4].into(), 1, 50, Origin::LOCAL), "storing again is true and keeps the later expiry");
        assert_eq!(s.get_held(&HeldKey::Value(mid), 1), Some(Held::Value { key: mid, value: vec![1; 4].into(), expires_at: 100 }));
        assert!(!s.put_value(far, vec![2; 11].into(), 2, 100, Origin::LOCAL), "larger than the byte bound");
        assert!(s.put_value(far, vec![2; 6].into(), 2, 100, Origin::LOCAL));
        assert_eq!(s.counts(), (2, 10, 0, 0));
        // Full: a nearer newcomer evicts the farthest.
        assert!(s.put_value(near, vec![3; 1].into(), 3, 100, Origin::LOCAL));
        assert_eq!(s.get_value(&far, 3), None);
        assert_eq!(s.counts(), (2, 5, 0, 0));
        // A newcomer that would be first to go itself is refused, and nothing is evicted.
        assert!(!s.put_value(far, vec![2; 1].into(), 4, 1000, Origin::LOCAL));
        assert_eq!(s.counts(), (2, 5, 0, 0));
        // Equally far (same bucket): the sooner to expire goes first.
        let mid2 = Id([0x11; 32]);
        assert!(!s.put_value(mid2, vec![4; 1].into(), 5, 99, Origin::LOCAL), "expires sooner than mid: refused");
        assert!(s.put_value(mid2, vec![4; 1].into(), 5, 101, Origin::LOCAL));
        assert_eq!(s.get_value(&mid, 5), None, "mid (expiring at 100) was evicted");
        assert!(s.get_value(&near, 5).is_some() && s.get_value(&mid2, 5).is_some());
        // An expired record makes room first, even the nearest: the far newcomer fits.
        assert!(s.put_value(far, vec![2; 1].into(), 100, 1000, Origin::LOCAL));
        assert_eq!(s.get_value(&near, 100), None);
        assert!(s.get_value(&mid2, 100).is_some() && s.get_value(&far, 100).is_some());
    }

    #[test]
    fn values_and_records_expire_and_are_journaled() {
        let (sk, pk) = sign::keypair(&mut rng());
        let r = sign::sign(&sk, pk, [1; 32], [2; 32], 1);
        let mut s = MemStore::new(Id::ZERO);
        s.journal(true);
        let key = Id::hash(b"v");
        assert!(s.put_value(key, Arc::from(&b"v"[..]), 0, 10, Origin::LOCAL));
        assert_eq!(s.namespace_put(r, 0, 20, Origin::LOCAL), Ok(()));
        assert_eq!(s.get_value(&key, 9).as_deref(), Some(&b"v"[..]));
        assert_eq!(s.get_value(&key, 10), None, "expired reads are refused before the sweep");
        assert_eq!(s.namespace_get(&pk, &[1; 32], 19), Some(r));
        // A re-store with less time left does not shorten the life; a later one extends it.
        assert_eq!(s.namespace_put(r, 1, 15, Origin::LOCAL), Ok(()));
        assert_eq!(s.namespace_put(r, 2, 25, Origin::LOCAL), Ok(()));
        s.expire(21);
        assert_eq!(s.counts(), (0, 0, 0, 1));
        s.expire(25);
        assert_eq!(s.counts(), (0, 0, 0, 0));
        let changes = s.take_changes();
        assert_eq!(
            changes,
            vec![
                Change::Held(Held::Value { key, value: Arc::from(&b"v"[..]), expires_at: 10 }),
                // The re-store with less time left changed nothing: not journaled.
                Change::Held(Held::Record { record: r, expires_at: 20 }),
                Change::Held(Held::Record { record: r, expires_at: 25 }),
                Change::HeldGone(HeldKey::Value(key)),
                Change::HeldGone(HeldKey::Record(pk, [1; 32])),
            ]
        );
        assert!(s.take_changes().is_empty());
        assert!(!s.put_value(Id::hash(b"w"), Arc::from(&b"w"[..]), 30, 30, Origin::LOCAL), "already expired");
        // Restored records are checked and not journaled.
        assert!(s.restore(Held::Value { key, value: Arc::from(&b"v"[..]), expires_at: 100 }, 30));
        assert!(!s.restore(Held::Value { key, value: Arc::from(&b"x"[..]), expires_at: 100 }, 30), "wrong hash");
        let mut forged = r;
        forged.signature[0] ^= 1;
        assert!(!s.restore(Held::Record { record: forged, expires_at: 100 }, 30));
        assert!(s.take_changes().is_empty());
        assert_eq!(s.counts(), (1, 1, 0, 0));
    }

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(5)
    }

    #[test]
    fn namespace_valid_record_is_stored_and_forgeries_refused() {
        let mut rng = rng();
        let (sk, pk) = sign::keypair(&mut rng);
        let (_, other_pk) = sign::keypair(&mut rng);
        let mut s = MemStore::new(Id::ZERO);
        let r = sign::sign(&sk, pk, [1; 32], [2; 32], 10);
        assert_eq!(s.namespace_put(r, 0, NEVER, Origin::LOCAL), Ok(()));
        assert_eq!(s.namespace_get(&pk, &[1; 32], 0), Some(r));
        assert_eq!(s.namespace_get(&pk, &[2; 32], 0), None);
        // Forged: a higher seq with a tampered signature.
        let mut forged = sign::sign(&sk, pk, [1; 32], [3; 32], 11);
        forged.signature[5] ^= 1;
        assert_eq!(s.namespace_put(forged, 1, NEVER, Origin::LOCAL), Err(NamespaceRefusal::BadSignature));
        // A record claiming another public key than the one that signed it.
        let mut wrong_key = sign::sign(&sk, pk, [1; 32], [3; 32], 12);
        wrong_key.public_key = other_pk;
        assert_eq!(s.namespace_put(wrong_key, 2, NEVER, Origin::LOCAL), Err(NamespaceRefusal::BadSignature));
        assert_eq!(s.namespace_get(&other_pk, &[1; 32], 0), None);
        assert_eq!(s.namespace_get(&pk, &[1; 32], 0), Some(r));
        assert_eq!(s.counts().3, 1);
    }

    #[test]
    fn namespace_seq_rules() {
        let (sk, pk) = sign::keypair(&mut rng());
        let mut s = MemStore::new(Id::ZERO);
        let r5 = sign::sign(&sk, pk, [1; 32], [5; 32], 5);
        let r4 = sign::sign(&sk, pk, [1; 32], [4; 32], 4);
        assert_eq!(s.namespace_put(r5, 0, NEVER, Origin::LOCAL), Ok(()));
        assert_eq!(s.namespace_put(r4, 1, NEVER, Origin::LOCAL), Err(NamespaceRefusal::Stale), "rollback");
        assert_eq!(s.namespace_get(&pk, &[1; 32], 0), Some(r5));
        assert_eq!(s.namespace_put(r5, 2, NEVER, Origin::LOCAL), Ok(()), "equal seq, same value: refresh");
        let r6 = sign::sign(&sk, pk, [1; 32], [6; 32], 6);
        assert_eq!(s.namespace_put(r6, 3, NEVER, Origin::LOCAL), Ok(()));
        assert_eq!(s.namespace_get(&pk, &[1; 32], 0), Some(r6));
    }

    #[test]
    fn namespace_equal_seq_tie_break_converges() {
        let (sk, pk) = sign::keypair(&mut rng());
        let a = sign::sign(&sk, pk, [1; 32], [0xA; 32], 7);
        let b = sign::sign(&sk, pk, [1; 32], [0xB; 32], 7);
        let (win, lose) = if sign::newer(&a, &b) { (a, b) } else { (b, a) };
        let mut s1 = MemStore::new(Id::ZERO);
        assert_eq!(s1.namespace_put(lose, 0, NEVER, Origin::LOCAL), Ok(()));
        assert_eq!(s1.namespace_put(win, 1, NEVER, Origin::LOCAL), Ok(()));
        let mut s2 = MemStore::new(Id::ZERO);
        assert_eq!(s2.namespace_put(win, 0, NEVER, Origin::LOCAL), Ok(()));
        assert_eq!(s2.namespace_put(lose, 1, NEVER, Origin::LOCAL), Err(NamespaceRefusal::Stale));
        assert_eq!(s1.namespace_get(&pk, &[1; 32], 0), Some(win));
        assert_eq!(s2.namespace_get(&pk, &[1; 32], 0), Some(win));
    }

    #[test]
    fn namespace_records_are_bounded() {
        let (sk, pk) = sign::keypair(&mut rng());
        let mut s = MemStore::with_limits(Id::ZERO, Limits { max_namespace_records: 1, ..Limits::default() });
        // Of two keys, the one whose target is nearer our uid (0) evicts the other.
        let c = |k: [u8; 32]| closeness(&Id::ZERO, &sign::ns_target(&pk, &k));
        let mut keys: Vec<[u8; 32]> = (0..=255u8).map(|b| [b; 32]).collect();
        keys.sort_by_key(|k| c(*k));
        let (far, near) = (keys[0], keys[255]);
        assert!(c(far) < c(near));
        assert_eq!(s.namespace_put(sign::sign(&sk, pk, far, [1; 32], 1), 0, NEVER, Origin::LOCAL), Ok(()));
        assert_eq!(s.namespace_put(sign::sign(&sk, pk, far, [2; 32], 2), 0, NEVER, Origin::LOCAL), Ok(()), "updates still fit");
        assert_eq!(s.namespace_put(sign::sign(&sk, pk, near, [1; 32], 1), 0, NEVER, Origin::LOCAL), Ok(()));
        assert_eq!(s.namespace_get(&pk, &far, 0), None, "evicted");
        assert_eq!(s.namespace_put(sign::sign(&sk, pk, far, [3; 32], 3), 0, NEVER, Origin::LOCAL), Err(NamespaceRefusal::Full));
        assert_eq!(s.counts().3, 1);
    }

    #[test]
    fn one_source_holds_at_most_its_quota_once_the_store_fills() {
        use crate::diversity::Diversity;
        let d = Diversity::strict();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let mut s = MemStore::with_limits(Id::ZERO, Limits { max_values: 64, ..Limits::default() });
        let value = |i: u32| -> Arc<[u8]> { Arc::from(&i.to_be_bytes()[..]) };
        let put = |s: &mut MemStore, i: u32, o: Origin| s.put_value(Id::hash(&value(i)), value(i), 0, NEVER, o);
        // An attacker on one /24 with a new key per record: free up to a quarter of the
        // table (16), then refused, its prefix holding more than its eighth (8) already.
        let attacker = |i: u32| Origin::remote(&Id::hash(&i.to_be_bytes()).0, ip("127.0.9.1"), &d);
        let stored = (0..1000).filter(|&i| put(&mut s, i, attacker(i))).count();
        assert_eq!(stored, 16);
        // One honest key on another /24: its sixteenth (4) past the free quarter.
        let honest = Origin::remote(&[7; 32], ip("127.0.1.5"), &d);
        let stored = (1000..1100).filter(|&i| put(&mut s, i, honest)).count();
        assert_eq!(stored, 4);
        // Other honest sources still fit, and our own records are never counted.
        let other = Origin::remote(&[8; 32], ip("127.0.2.5"), &d);
        assert!(put(&mut s, 2000, other));
        assert_eq!((3000..3040).filter(|&i| put(&mut s, i, Origin::LOCAL)).count(), 40);
        assert_eq!(s.counts().0, 61);
        // Records that leave give their source's share back.
        for i in 0..1000 {
            s.remove(&HeldKey::Value(Id::hash(&value(i))));
        }
        assert!(put(&mut s, 5000, attacker(5000)), "the attacker's prefix is back under its share");
        // Under the default limits a loopback prefix is not counted (a test network on
        // 127.0.0.1 shares one), but each key still has its share.
        let mut s = MemStore::with_limits(Id::ZERO, Limits { max_values: 64, ..Limits::default() });
        let one = Origin::remote(&[9; 32], ip("127.0.0.1"), &Diversity::default());
        assert_eq!((0..64).filter(|&i| put(&mut s, i, one)).count(), 16, "one key past the free quarter: over its share");
    }

    #[test]
    fn time_never_runs_backwards() {
        const TTL: u64 = consts::BAG_ENTRY_TTL_US;
        let (key, value, publisher) = (Id([7; 32]), [1; 32], [0xAA; 32]);
        let mut s = MemStore::new(Id::ZERO);
        let mut never = || -> u64 { panic!("only sampling draws") };
        assert!(s.bag_add(key, value, publisher, 0));
        s.expire(TTL);
        // A publish stamped before the store's time counts from the store's time.
        assert!(s.bag_add(key, value, publisher, 5));
        assert_eq!(s.bag_query(&key, BagKind::Popular, 20, 10, &mut never)[0].seconds, 0);
        assert_eq!(s.bag_query(&key, BagKind::Popular, 20, 2 * TTL - 1, &mut never).len(), 1);
    }
}
