//! Bags (`Bags`): entries and their publishers, the per-bag rank, the size index over bags,
//! eviction, and the expiry heap.
//!
//! Bags. Popularity counts distinct publishers, not messages: an entry (one 32-byte value of
//! a key's bag) maps each publisher to its latest publish, and its count is the number of
//! publishers that published within the TTL. A publish older than `BAG_ENTRY_TTL_US`
//! (30 minutes) stops counting, and an entry without a live publisher is gone. 30 minutes is
//! the usual BitTorrent announce interval (trackers commonly answer `interval` 1800 s), so a
//! publisher that republishes on that schedule keeps counting, and one that left stops
//! counting within one interval. Publishers per entry are
//! capped (`MAX_PUBLISHERS_PER_ENTRY`): past it the oldest publisher is forgotten, so the
//! count saturates at the cap.
//!
//! Bounds and eviction: a full bag (`MAX_BAG_ENTRIES_PER_KEY`) makes room by dropping its
//! least popular entry, the oldest among equals; a newcomer (one publisher, publishing now)
//! is refused instead when every stored entry is more popular than it, so a flood of
//! one-publisher values cannot push out values many peers publish. The total bound
//! (`MAX_BAG_ENTRIES_TOTAL`) is lazy rather than a global least-popular search: the victim is
//! the least popular, oldest entry of the *largest* bag (among equal sizes, the bag published
//! to least recently). This shares the space fairly between keys: one flooded key loses
//! entries before any other key does. A size index over bags and a rank of each bag's entries
//! by (publishers, latest publish) find either victim in O(log n); the rank also answers
//! `Popular` without sorting.
//!
//! Expiry is cheap: every entry sits once in a min-heap keyed by when its oldest publisher
//! expires; `expire`, `add` and `query` pop only what is due (amortized O(log n) per
//! publish), so after any of them no stored publisher is older than the TTL. Costs: a
//! publish or an evicting add is O(log n) amortized; a query is O(max · log n) for
//! `Popular`, O(bag size) for `Recent` and `Sample`.

use crate::id::Id;
use crate::wire::{BagEntry, BagKind};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};

/// One value of a bag and who published it.
struct Entry {
    /// Publisher -> time of its latest publish.
    publishers: HashMap<[u8; 32], u64>,
    /// (time, publisher) in publish order, oldest first, so expiry pops the front. A record
    /// is current when `publishers` holds that time for that publisher; otherwise a
    /// republish superseded it and it is skipped (compacted when they pile up).
    order: VecDeque<(u64, [u8; 32])>,
    latest: u64,
    /// When the expiry heap looks at this entry next; a heap record with another time is stale.
    /// Invariant: `due <= order.front().0 + ttl` (records only leave from the front), so once
    /// `expire(now)` has run, every stored publisher is live at `now`.
    due: u64,
}

impl Entry {
    fn new(publisher: [u8; 32], now: u64, due: u64) -> Entry {
        Entry {
            publishers: HashMap::from([(publisher, now)]),
            order: VecDeque::from([(now, publisher)]),
            latest: now,
            due,
        }
    }

    /// Forget publishers whose latest publish is `ttl` old by `now`.
    fn prune(&mut self, now: u64, ttl: u64) {
        while let Some(&(t, p)) = self.order.front() {
            if t.saturating_add(ttl) > now {
                break;
            }
            self.order.pop_front();
            if self.publishers.get(&p) == Some(&t) {
                self.publishers.remove(&p);
            }
        }
    }

    fn publish(&mut self, publisher: [u8; 32], now: u64, ttl: u64, max_publishers: usize) {
        self.prune(now, ttl);
        match self.publishers.get_mut(&publisher) {
            Some(t) if *t == now => return, // already recorded at this very time
            Some(t) => *t = now,
            None => {
                if self.publishers.len() >= max_publishers.max(1) {
                    self.drop_oldest();
                }
                self.publishers.insert(publisher, now);
            }
        }
        self.order.push_back((now, publisher));
        self.latest = self.latest.max(now);
        // Republishes leave superseded records; rebuild once they outnumber the live ones.
        if self.order.len() > 2 * self.publishers.len() + 16 {
            let mut v: Vec<(u64, [u8; 32])> = self.publishers.iter().map(|(p, t)| (*t, *p)).collect();
            v.sort_unstable();
            self.order = v.into();
        }
    }

    fn drop_oldest(&mut self) {
        while let Some((t, p)) = self.order.pop_front() {
            if self.publishers.get(&p) == Some(&t) {
                self.publishers.remove(&p);
                return;
            }
        }
    }

    fn count(&self) -> u32 {
        u32::try_from(self.publishers.len()).unwrap_or(u32::MAX)
    }

    fn rank(&self, value: [u8; 32]) -> Rank {
        (self.count(), self.latest, value)
    }
}

/// An entry's place in its bag: (live publishers, latest publish, value).
type Rank = (u32, u64, [u8; 32]);

struct Bag {
    entries: HashMap<[u8; 32], Entry>,
    /// Every entry by rank, kept in step by the methods below: the first is the one to evict
    /// (least popular, then oldest, then smallest value so the choice is deterministic), the
    /// last the most popular.
    rank: BTreeSet<Rank>,
    /// Latest publish to any entry (only the size index's tie-break).
    latest: u64,
}

impl Bag {
    fn insert(&mut self, value: [u8; 32], e: Entry) {
        self.rank.insert(e.rank(value));
        self.latest = self.latest.max(e.latest);
        self.entries.insert(value, e);
    }

    fn remove(&mut self, value: &[u8; 32]) -> bool {
        let Some(e) = self.entries.remove(value) else { return false };
        self.rank.remove(&e.rank(*value));
        true
    }

    /// Run `f` on the entry `value`, then move it in the rank. None when there is no such entry.
    fn update<R>(&mut self, value: &[u8; 32], f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let e = self.entries.get_mut(value)?;
        let before = e.rank(*value);
        let r = f(e);
        let after = e.rank(*value);
        if before != after {
            self.rank.remove(&before);
            self.rank.insert(after);
        }
        self.latest = self.latest.max(e.latest);
        Some(r)
    }
}

/// Size index key of a bag: the last element is the bag the total bound evicts from.
type IndexKey = (usize, Reverse<u64>, Id);

/// The bounds of `Bags`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BagLimits {
    /// A publish counts this long (microseconds).
    pub ttl_us: u64,
    pub per_key: usize,
    pub total: usize,
    pub publishers_per_entry: usize,
}

/// Every bag a peer holds, with the bounds, the size index and the expiry heap that span them.
/// Time must not run backwards between calls (the store above makes sure of it).
pub struct Bags {
    limits: BagLimits,
    bags: HashMap<Id, Bag>,
    /// Entries over all bags.
    entries: usize,
    index: BTreeSet<IndexKey>,
    /// (due, key, value): min-heap of when each entry's oldest publisher expires.
    heap: BinaryHeap<Reverse<(u64, Id, [u8; 32])>>,
}

impl Bags {
    pub fn new(limits: BagLimits) -> Bags {
        Bags { limits, bags: HashMap::new(), entries: 0, index: BTreeSet::new(), heap: BinaryHeap::new() }
    }

    /// Entries over all bags.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Record that `publisher` published `value` in the bag `key` at `now`. False when the
    /// entry could not be kept (bag and total bounds, after evicting what they allow).
    pub fn add(&mut self, key: Id, value: [u8; 32], publisher: [u8; 32], now: u64) -> bool {
        self.expire(now);
        let l = self.limits;
        let republished = self.with_bag(&key, |bag| {
            bag.update(&value, |e| e.publish(publisher, now, l.ttl_us, l.publishers_per_entry)).is_some()
        });
        if republished == Some(true) {
            return true;
        }
        if l.per_key == 0 || l.total == 0 {
            return false;
        }
        let len = self.bags.get(&key).map_or(0, |b| b.entries.len());
        if len >= l.per_key && !self.make_room(&key, &key, now) {
            return false;
        }
        if self.entries >= l.total {
            let Some(&(_, _, largest)) = self.index.iter().next_back() else {
                return false;
            };
            if !self.make_room(&largest, &key, now) {
                return false;
            }
        }
        let due = now.saturating_add(l.ttl_us);
        let bag = self.bags.entry(key).or_insert_with(|| Bag { entries: HashMap::new(), rank: BTreeSet::new(), latest: now });
        self.index.remove(&(bag.entries.len(), Reverse(bag.latest), key));
        bag.insert(value, Entry::new(publisher, now, due));
        self.index.insert((bag.entries.len(), Reverse(bag.latest), key));
        self.entries += 1;
        self.heap.push(Reverse((due, key, value)));
        true
    }

    /// At most `max` live entries of the bag `key`, in the order `kind` asks for. `rand`
    /// supplies randomness for sampling (a fresh u64 each call).
    pub fn query(&mut self, key: &Id, kind: BagKind, max: usize, now: u64, rand: &mut dyn FnMut() -> u64) -> Vec<BagEntry> {
        self.expire(now);
        let ttl = self.limits.ttl_us;
        let Some(bag) = self.bags.get(key) else { return Vec::new() };
        debug_assert!(bag.entries.values().all(|e| e.order.front().is_some_and(|&(t, _)| t.saturating_add(ttl) > now)));
        let mut live: Vec<Rank> = match kind {
            // Most publishers first, then newest: the rank read backwards.
            BagKind::Popular => bag.rank.iter().rev().take(max).copied().collect(),
            BagKind::Recent => {
                let mut v: Vec<Rank> = bag.rank.iter().copied().collect();
                top(&mut v, max, |&(c, t, v)| (Reverse(t), Reverse(c), v));
                v
            }
            BagKind::Sample => bag.rank.iter().copied().collect(), // rank order: deterministic
        };
        if kind == BagKind::Sample {
            let k = max.min(live.len());
            for i in 0..k {
                let j = i + below(rand, (live.len() - i) as u64) as usize;
                live.swap(i, j);
            }
            live.truncate(k);
        }
        live.into_iter().map(|(count, latest, value)| BagEntry { value, count, seconds: (now - latest) / 1_000_000 }).collect()
    }

    /// Run `f` on the bag `key`, then bring the entry total, the size index and the bag map
    /// up to date with what `f` changed. None when there is no such bag.
    fn with_bag<R>(&mut self, key: &Id, f: impl FnOnce(&mut Bag) -> R) -> Option<R> {
        let bag = self.bags.get_mut(key)?;
        let (len0, latest0) = (bag.entries.len(), bag.latest);
        let r = f(bag);
        let (len1, latest1) = (bag.entries.len(), bag.latest);
        self.entries = self.entries + len1 - len0; // len0 <= bag_entries always
        if (len0, latest0) != (len1, latest1) {
            self.index.remove(&(len0, Reverse(latest0), *key));
            if len1 > 0 {
                self.index.insert((len1, Reverse(latest1), *key));
            }
        }
        if len1 == 0 {
            self.bags.remove(key);
        }
        Some(r)
    }

    /// Free one entry's room in the bag `from` for a newcomer to the bag `to` by evicting its
    /// victim, unless the newcomer would be the victim itself (same bag, every entry more
    /// popular than one publisher publishing now). False when no room was made. The caller
    /// ran `expire(now)`, so nothing expired is left to drop first.
    fn make_room(&mut self, from: &Id, to: &Id, now: u64) -> bool {
        let same = from == to;
        self.with_bag(from, |bag| match bag.rank.first().copied() {
            Some((count, latest, _)) if same && (count, latest) >= (1, now) => false,
            Some((_, _, value)) => bag.remove(&value),
            None => false,
        })
        .unwrap_or(false)
    }

    /// Drop what has expired by `now` (the expiry heap, up to `now`).
    pub fn expire(&mut self, now: u64) {
        let ttl = self.limits.ttl_us;
        while let Some(&Reverse((due, key, value))) = self.heap.peek() {
            if due > now {
                break;
            }
            self.heap.pop();
            let next = self.with_bag(&key, |bag| {
                let next = bag
                    .update(&value, |e| {
                        if e.due != due {
                            return None; // stale record: the entry was rescheduled or replaced
                        }
                        e.prune(now, ttl);
                        // Early if the front record was superseded: the next look just goes on.
                        e.due = e.order.front()?.0.saturating_add(ttl);
                        Some(e.due)
                    })
                    .flatten();
                if bag.entries.get(&value).is_some_and(|e| e.publishers.is_empty()) {
                    bag.remove(&value);
                }
                next
            });
            if let Some(Some(next)) = next {
                self.heap.push(Reverse((next, key, value)));
            }
        }
        // Evicted entries leave their records behind; rebuild once they dominate (amortized).
        if self.heap.len() > 2 * self.entries + 1024 {
            self.heap = self
                .bags
                .iter()
                .flat_map(|(k, b)| b.entries.iter().map(move |(v, e)| Reverse((e.due, *k, *v))))
                .collect();
        }
    }
}

/// A uniform integer in 0..m (m > 0) without modulo bias (Lemire's method).
fn below(rand: &mut dyn FnMut() -> u64, m: u64) -> u64 {
    let threshold = m.wrapping_neg() % m;
    loop {
        let r = (rand() as u128) * (m as u128);
        if r as u64 >= threshold {
            return (r >> 64) as u64;
        }
    }
}

/// The first `max` of `v` in the order of `key`, without sorting all of `v`.
fn top<K: Ord>(v: &mut Vec<Rank>, max: usize, key: impl Fn(&Rank) -> K) {
    if v.len() > max && max > 0 {
        v.select_nth_unstable_by_key(max - 1, &key);
    }
    v.truncate(max);
    v.sort_unstable_by_key(key);
}

#[cfg(test)]
mod tests;
