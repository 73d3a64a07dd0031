//! Keeping data alive (PROTOCOL.md §6): the publisher's republish list and when each entry is
//! due, the holders' re-store schedule, new contacts to hand records to, and buckets to
//! refresh. This module decides *what* is due; the core starts the tasks that do it, at most
//! `MAX_BACKGROUND` at once so maintenance never floods the network or starves callers.

use crate::consts::{MAX_PUBLISHED, MAX_PUBLISHED_BYTES};
use crate::id::Id;
use crate::store::kept::{Change, HeldKey, Published, PublishedKey};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// Maintenance tasks (republish, re-store, bucket refresh) running at once, at most.
pub(crate) const MAX_BACKGROUND: usize = 8;

/// The intervals maintenance keeps, in microseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Intervals {
    /// The publisher republishes values and namespace records this often.
    pub republish_us: u64,
    /// ... and bag entries this often (they live `BAG_ENTRY_TTL_US`).
    pub bag_republish_us: u64,
    /// A holder re-stores a record not refreshed for this long (plus its jitter).
    pub maintain_us: u64,
    /// A bucket no contact of was heard from for this long is refreshed with a lookup.
    pub refresh_us: u64,
    /// Benchmark only (`CoreConfig::restore_always`): holders re-store every interval.
    pub restore_always: bool,
}

impl Intervals {
    fn of(&self, p: &Published) -> u64 {
        match p {
            Published::BagEntry { .. } => self.bag_republish_us,
            _ => self.republish_us,
        }
    }

    /// When `p`, stored at `now`, is next republished: within the last 10% of its interval.
    pub fn next_republish(&self, p: &Published, now: u64, rng: &mut StdRng) -> u64 {
        let every = self.of(p);
        now + every - every / 10 + rng.gen_range(0..=every / 10)
    }

    /// How often the held records are swept for what is due.
    pub fn sweep_us(&self) -> u64 {
        (self.maintain_us / 8).max(1)
    }

    /// When a holder re-stores a record refreshed at `refreshed_at`: after the interval plus
    /// a jitter of 10-35% of it, fixed per (holder, record). The publisher republishes within
    /// 90-100% of its interval, so while it lives the holders only listen; once it is gone,
    /// the holder whose jitter is smallest re-stores first and the others, refreshed by it,
    /// skip (the Kademlia paper's optimisation: one re-store per record and interval).
    pub fn restore_due(&self, me: &Id, target: &Id, refreshed_at: u64) -> u64 {
        let h = Id::hash_parts(&[&me.0, &target.0]);
        let frac = u64::from_be_bytes(h.0[..8].try_into().expect("8 bytes")) % 1000;
        let jitter = self.maintain_us / 10 + self.maintain_us / 4 * frac / 1000;
        refreshed_at.saturating_add(self.maintain_us).saturating_add(jitter)
    }

    /// Without the optimisation (`restore_always`): a holder re-stores each record once per
    /// interval, at a phase fixed per (holder, record), refreshed or not. True when that
    /// time fell in (`last`, `now`].
    pub fn restore_period_passed(&self, me: &Id, target: &Id, last: u64, now: u64) -> bool {
        let phase = self.restore_due(me, target, 0) % self.maintain_us;
        let period = |t: u64| (t + self.maintain_us - phase) / self.maintain_us;
        period(now) > period(last)
    }
}

struct Entry {
    item: Published,
    /// Order of publication (the oldest leaves first when the list is full).
    seq: u64,
    due: u64,
    bytes: usize,
}

/// What this peer republishes: everything it stored itself and has not forgotten, bounded
/// by `MAX_PUBLISHED` entries and `MAX_PUBLISHED_BYTES`; past either bound the least recently
/// published entry leaves the list (it then lives out its lifetime at its holders).
#[derive(Default)]
pub(crate) struct Publications {
    entries: HashMap<PublishedKey, Entry>,
    due: BTreeSet<(u64, PublishedKey)>,
    order: BTreeSet<(u64, PublishedKey)>,
    bytes: usize,
    seq: u64,
    /// Changes for the data directory, when it keeps them.
    changes: Option<Vec<Change>>,
    /// Entries pushed out by the bound so far.
    pub dropped: u64,
}

fn size(p: &Published) -> usize {
    match p {
        Published::Value(v) => v.len() + 32,
        Published::BagEntry { .. } => 64,
        Published::Record(_) => 168,
    }
}

impl Publications {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn journal(&mut self, on: bool) {
        self.changes = on.then(Vec::new);
    }

    pub fn take_changes(&mut self) -> Vec<Change> {
        self.changes.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn log(&mut self, c: Change) {
        if let Some(v) = &mut self.changes {
            v.push(c);
        }
    }

    /// Add `p` (replacing the entry of the same key), next due at `due`.
    pub fn add(&mut self, p: Published, due: u64) {
        let k = p.key();
        self.remove(&k);
        self.seq += 1;
        let bytes = size(&p);
        self.bytes += bytes;
        self.due.insert((due, k));
        self.order.insert((self.seq, k));
        self.log(Change::Published(p.clone()));
        self.entries.insert(k, Entry { item: p, seq: self.seq, due, bytes });
        while self.entries.len() > MAX_PUBLISHED || self.bytes > MAX_PUBLISHED_BYTES {
            let Some(&(_, oldest)) = self.order.first() else { break };
            self.remove(&oldest);
            self.log(Change::Unpublished(oldest));
            self.dropped += 1;
        }
    }

    fn remove(&mut self, k: &PublishedKey) -> bool {
        let Some(e) = self.entries.remove(k) else { return false };
        self.due.remove(&(e.due, *k));
        self.order.remove(&(e.seq, *k));
        self.bytes -= e.bytes;
        true
    }

    /// Stop republishing everything stored under `key`: the value whose key it is, our
    /// entries in the bag `key`, our namespace records under `key` (any public key).
    /// Returns how many entries left the list.
    pub fn forget(&mut self, key: &Id) -> usize {
        let gone: Vec<PublishedKey> = self
            .entries
            .keys()
            .filter(|k| match k {
                PublishedKey::Value(v) => v == key,
                PublishedKey::BagEntry(b, _) => b == key,
                PublishedKey::Record(_, k) => k == &key.0,
            })
            .copied()
            .collect();
        for k in &gone {
            self.remove(k);
            self.log(Change::Unpublished(*k));
        }
        gone.len()
    }

    /// When the next entry is due.
    pub fn next_due(&self) -> Option<u64> {
        self.due.first().map(|(t, _)| *t)
    }

    /// The next entry due by `now`, rescheduled 90-100% of its interval later.
    pub fn pop_due(&mut self, now: u64, iv: &Intervals, rng: &mut StdRng) -> Option<Published> {
        let &(t, k) = self.due.first()?;
        if t > now {
            return None;
        }
        self.due.remove(&(t, k));
        let e = self.entries.get_mut(&k).expect("due entries are listed");
        e.due = iv.next_republish(&e.item, now, rng);
        self.due.insert((e.due, k));
        Some(e.item.clone())
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Published> {
        self.order.iter().map(|(_, k)| &self.entries[k].item)
    }
}

/// Work waiting for a free background slot, without duplicates.
pub(crate) struct Queue<T: Copy + Eq + std::hash::Hash> {
    items: VecDeque<T>,
    queued: HashSet<T>,
}

impl<T: Copy + Eq + std::hash::Hash> Default for Queue<T> {
    fn default() -> Self {
        Queue { items: VecDeque::new(), queued: HashSet::new() }
    }
}

impl<T: Copy + Eq + std::hash::Hash> Queue<T> {
    pub fn push(&mut self, t: T) {
        if self.queued.insert(t) {
            self.items.push_back(t);
        }
    }

    pub fn pop(&mut self) -> Option<T> {
        let t = self.items.pop_front()?;
        self.queued.remove(&t);
        Some(t)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What maintenance did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceCounters {
    /// Republish stores started for entries of our republish list.
    pub republished: u64,
    /// Re-stores started by us as a holder.
    pub restored: u64,
    /// Records handed to a newly joined peer nearer to them than us.
    pub handed_over: u64,
    /// Lookups that refreshed a stale bucket.
    pub bucket_refreshes: u64,
    /// Re-stores queued because a contact that held the record left (counted in `restored`
    /// too when they start).
    pub departures_restored: u64,
}

impl MaintenanceCounters {
    /// Field by field `f(self, o)`: sums for totals, differences for windows.
    fn combine(self, o: Self, f: fn(u64, u64) -> u64) -> Self {
        MaintenanceCounters {
            republished: f(self.republished, o.republished),
            restored: f(self.restored, o.restored),
            handed_over: f(self.handed_over, o.handed_over),
            bucket_refreshes: f(self.bucket_refreshes, o.bucket_refreshes),
            departures_restored: f(self.departures_restored, o.departures_restored),
        }
    }
}

impl std::ops::Add for MaintenanceCounters {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        self.combine(o, u64::saturating_add)
    }
}

impl std::ops::Sub for MaintenanceCounters {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        self.combine(o, u64::saturating_sub)
    }
}

/// The maintenance state of one core.
pub(crate) struct Maintenance {
    pub iv: Intervals,
    pub publications: Publications,
    pub restores: Queue<HeldKey>,
    pub refreshes: Queue<Id>,
    /// When we last refreshed each bucket: at most once per `refresh_us`, even when the
    /// lookup found nobody for it (an empty bucket stays stale).
    /// Indexed by bucket, grown to the deepest refreshed (like the routing table's buckets).
    pub bucket_refreshed: Vec<Option<u64>>,
    pub next_sweep: u64,
    /// Background tasks running.
    pub running: usize,
    pub counters: MaintenanceCounters,
}

impl Maintenance {
    pub fn new(iv: Intervals, now: u64) -> Maintenance {
        Maintenance {
            iv,
            publications: Publications::default(),
            restores: Queue::default(),
            refreshes: Queue::default(),
            bucket_refreshed: Vec::new(),
            next_sweep: now + iv.sweep_us(),
            running: 0,
            counters: MaintenanceCounters::default(),
        }
    }

    /// When maintenance next has something to do (`now` when work waits for a slot).
    pub fn next_timeout(&self, now: u64) -> u64 {
        let ready = !self.restores.is_empty() || !self.refreshes.is_empty();
        if self.running < MAX_BACKGROUND && ready {
            return now;
        }
        let mut t = self.next_sweep;
        if self.running < MAX_BACKGROUND {
            if let Some(d) = self.publications.next_due() {
                t = t.min(d.max(now));
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::sync::Arc;

    fn iv() -> Intervals {
        Intervals { republish_us: 1000, bag_republish_us: 100, maintain_us: 1000, refresh_us: 1000, restore_always: false }
    }

    #[test]
    fn publications_are_due_in_order_and_rescheduled_with_jitter() {
        let mut p = Publications::default();
        let mut rng = StdRng::seed_from_u64(1);
        p.add(Published::Value(Arc::from(&b"a"[..])), 50);
        p.add(Published::BagEntry { key: Id([1; 32]), value: [2; 32] }, 10);
        assert_eq!(p.next_due(), Some(10));
        assert!(p.pop_due(9, &iv(), &mut rng).is_none());
        assert_eq!(p.pop_due(10, &iv(), &mut rng), Some(Published::BagEntry { key: Id([1; 32]), value: [2; 32] }));
        let next = p.next_due().unwrap();
        assert_eq!(next, 50, "the value is due next");
        assert!(matches!(p.pop_due(60, &iv(), &mut rng), Some(Published::Value(_))));
        // The bag entry came back 90-100 after 10; the value 900-1000 after 60.
        let bag_due = p.due.iter().find(|(_, k)| matches!(k, PublishedKey::BagEntry(..))).unwrap().0;
        assert!((100..=110).contains(&bag_due), "{bag_due}");
        let value_due = p.due.iter().find(|(_, k)| matches!(k, PublishedKey::Value(_))).unwrap().0;
        assert!((960..=1060).contains(&value_due), "{value_due}");
    }

    #[test]
    fn forget_removes_every_entry_under_a_key_and_is_journaled() {
        let mut p = Publications::default();
        p.journal(true);
        let v: Arc<[u8]> = Arc::from(&b"v"[..]);
        let key = Id::hash(&v);
        p.add(Published::Value(v.clone()), 1);
        p.add(Published::BagEntry { key, value: [1; 32] }, 1);
        p.add(Published::BagEntry { key, value: [2; 32] }, 1);
        p.add(Published::BagEntry { key: Id([9; 32]), value: [1; 32] }, 1);
        assert_eq!(p.forget(&key), 3);
        assert_eq!(p.forget(&key), 0);
        assert_eq!(p.len(), 1);
        let changes = p.take_changes();
        assert_eq!(changes.len(), 7);
        assert_eq!(changes.iter().filter(|c| matches!(c, Change::Unpublished(_))).count(), 3);
    }

    #[test]
    fn the_list_is_bounded_and_drops_the_oldest() {
        let mut p = Publications::default();
        for i in 0..MAX_PUBLISHED as u64 + 5 {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&i.to_be_bytes());
            p.add(Published::BagEntry { key: Id(key), value: [0; 32] }, i);
        }
        assert_eq!(p.len(), MAX_PUBLISHED);
        assert_eq!(p.dropped, 5);
        let first = p.iter().next().unwrap();
        assert!(matches!(first, Published::BagEntry { key, .. } if key.0[7] == 5), "entries 0..5 left");
        // Re-adding an entry moves it to the newest place.
        let oldest = p.iter().next().unwrap().clone();
        p.add(oldest.clone(), 0);
        assert_eq!(p.iter().last(), Some(&oldest));
    }

    #[test]
    fn without_the_optimisation_each_holder_restores_once_per_interval() {
        let iv = iv();
        let me = Id([3; 32]);
        for i in 0..20u8 {
            // Swept every 125 over 10 intervals: due in exactly 10 sweeps.
            let due = (1..=80u64).filter(|s| iv.restore_period_passed(&me, &Id([i; 32]), (s - 1) * 125, s * 125));
            assert_eq!(due.count(), 10);
        }
    }

    #[test]
    fn holders_restore_after_the_publisher_would_have() {
        let iv = iv();
        let me = Id([3; 32]);
        for i in 0..100u8 {
            let due = iv.restore_due(&me, &Id([i; 32]), 5000);
            assert!((5000 + 1100..5000 + 1350).contains(&due), "{due}");
        }
    }
}
