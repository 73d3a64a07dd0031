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
mod tests {
    use super::*;
    use crate::consts;
    use rand::{RngCore, SeedableRng};
    use std::collections::HashSet;

    const TTL: u64 = consts::BAG_ENTRY_TTL_US;
    const K: Id = Id([7; 32]);

    fn v(i: u8) -> [u8; 32] {
        [i; 32]
    }
    fn publisher(i: u32) -> [u8; 32] {
        let mut p = [0xAA; 32];
        p[..4].copy_from_slice(&i.to_be_bytes());
        p
    }
    fn limits() -> BagLimits {
        BagLimits {
            ttl_us: TTL,
            per_key: consts::MAX_BAG_ENTRIES_PER_KEY,
            total: consts::MAX_BAG_ENTRIES_TOTAL,
            publishers_per_entry: consts::MAX_PUBLISHERS_PER_ENTRY,
        }
    }
    fn small(per_key: usize, total: usize) -> Bags {
        Bags::new(BagLimits { per_key, total, ..limits() })
    }
    fn no_rand() -> u64 {
        panic!("only sampling draws")
    }
    fn query(s: &mut Bags, key: &Id, kind: BagKind, max: usize, now: u64) -> Vec<BagEntry> {
        s.query(key, kind, max, now, &mut no_rand)
    }
    fn values(es: &[BagEntry]) -> Vec<[u8; 32]> {
        es.iter().map(|e| e.value).collect()
    }
    /// Publish `value` by `n` distinct publishers (numbered from `first`) at `now`.
    fn publish_n(s: &mut Bags, key: Id, value: [u8; 32], first: u32, n: u32, now: u64) {
        for i in first..first + n {
            assert!(s.add(key, value, publisher(i), now));
        }
    }

    /// The derived structures agree with the entries, and nothing stored is dead at `now`.
    fn assert_consistent(s: &Bags, now: u64) {
        let ttl = s.limits.ttl_us;
        let mut total = 0;
        let mut index = BTreeSet::new();
        for (k, bag) in &s.bags {
            assert!(!bag.entries.is_empty() && bag.entries.len() <= s.limits.per_key);
            let rank: BTreeSet<Rank> = bag.entries.iter().map(|(v, e)| e.rank(*v)).collect();
            assert_eq!(rank, bag.rank);
            for e in bag.entries.values() {
                assert!(!e.publishers.is_empty() && e.publishers.len() <= s.limits.publishers_per_entry);
                assert!(e.publishers.values().all(|&t| t + ttl > now && t <= e.latest));
                assert!(e.publishers.iter().all(|(p, t)| e.order.contains(&(*t, *p))));
            }
            total += bag.entries.len();
            index.insert((bag.entries.len(), Reverse(bag.latest), *k));
        }
        assert_eq!(total, s.entries);
        assert!(total <= s.limits.total);
        assert_eq!(index, s.index);
        let due: HashSet<(u64, Id, [u8; 32])> = s.heap.iter().map(|r| r.0).collect();
        for (k, bag) in &s.bags {
            for (v, e) in &bag.entries {
                assert!(due.contains(&(e.due, *k, *v)), "every entry is scheduled");
            }
        }
    }

    #[test]
    fn random_operations_keep_the_store_consistent() {
        let mut s = Bags::new(BagLimits { ttl_us: 1_000, per_key: 5, total: 12, publishers_per_entry: 3 });
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let mut now = 0;
        let (mut added, mut refused) = (0, 0);
        for _ in 0..10_000 {
            now += rng.next_u64() % 60;
            let key = Id([(rng.next_u64() % 6) as u8; 32]);
            match rng.next_u64() % 4 {
                0 => {
                    let kind = [BagKind::Popular, BagKind::Recent, BagKind::Sample][(rng.next_u64() % 3) as usize];
                    let mut r2 = rand::rngs::StdRng::seed_from_u64(now);
                    let r = s.query(&key, kind, 3, now, &mut || r2.next_u64());
                    assert!(r.len() <= 3 && r.iter().all(|e| (1..=3).contains(&e.count) && e.seconds == 0));
                }
                1 => s.expire(now),
                _ => {
                    let ok = s.add(key, v((rng.next_u64() % 9) as u8), publisher((rng.next_u64() % 5) as u32), now);
                    if ok {
                        added += 1
                    } else {
                        refused += 1
                    }
                }
            }
            assert_consistent(&s, now);
        }
        assert!(added > 500 && refused > 0, "both paths exercised: {added} added, {refused} refused");
        s.expire(now + 1_000);
        assert_eq!(s.len(), 0);
        assert_consistent(&s, now + 1_000);
    }

    #[test]
    fn popularity_counts_distinct_publishers() {
        let mut s = Bags::new(limits());
        for t in 0..1000 {
            assert!(s.add(K, v(1), publisher(0), t));
        }
        publish_n(&mut s, K, v(2), 0, 5, 1000);
        let r = query(&mut s, &K, BagKind::Popular, 20, 1000);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].value, r[0].count), (v(2), 5));
        assert_eq!((r[1].value, r[1].count), (v(1), 1));
        // A thousand republishes do not pile up records.
        assert!(s.bags[&K].entries[&v(1)].order.len() <= 18);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn publishers_per_entry_saturate() {
        let mut s = Bags::new(BagLimits { publishers_per_entry: 3, ..limits() });
        for i in 0..5 {
            assert!(s.add(K, v(1), publisher(i), 1_000_000 * i as u64));
        }
        let r = query(&mut s, &K, BagKind::Popular, 20, 5_000_000);
        assert_eq!((r[0].count, r[0].seconds), (3, 1));
        // The oldest publishers were forgotten: publisher 4 republishing does not raise the count.
        assert!(s.add(K, v(1), publisher(4), 6_000_000));
        assert_eq!(query(&mut s, &K, BagKind::Popular, 20, 6_000_000)[0].count, 3);
    }

    #[test]
    fn popular_and_recent_orderings() {
        let mut s = Bags::new(limits());
        publish_n(&mut s, K, v(1), 0, 3, 10); // 3 publishers, old
        publish_n(&mut s, K, v(4), 30, 2, 15_000_000); // 2 publishers
        publish_n(&mut s, K, v(2), 10, 1, 20_000_000); // 1 publisher
        publish_n(&mut s, K, v(5), 40, 3, 25_000_000); // 3 publishers, newer than v(1)
        publish_n(&mut s, K, v(3), 20, 1, 30_000_000); // 1 publisher, newest
        let now = 40_000_000;
        let p = query(&mut s, &K, BagKind::Popular, 20, now);
        assert_eq!(values(&p), vec![v(5), v(1), v(4), v(3), v(2)]);
        assert_eq!(p.iter().map(|e| e.count).collect::<Vec<_>>(), vec![3, 3, 2, 1, 1]);
        assert_eq!(p.iter().map(|e| e.seconds).collect::<Vec<_>>(), vec![15, 39, 25, 10, 20]);
        let r = query(&mut s, &K, BagKind::Recent, 20, now);
        assert_eq!(values(&r), vec![v(3), v(5), v(2), v(4), v(1)]);
        assert_eq!(values(&query(&mut s, &K, BagKind::Popular, 2, now)), vec![v(5), v(1)]);
        assert_eq!(values(&query(&mut s, &K, BagKind::Recent, 3, now)), vec![v(3), v(5), v(2)]);
        assert!(query(&mut s, &K, BagKind::Recent, 0, now).is_empty());
        assert!(query(&mut s, &Id([9; 32]), BagKind::Popular, 20, now).is_empty());
    }

    #[test]
    fn sample_is_a_subset_without_duplicates_covering_all() {
        let mut s = Bags::new(limits());
        for i in 0..10 {
            publish_n(&mut s, K, v(i), u32::from(i) * 10, 1 + u32::from(i % 3), 100);
        }
        let all: HashSet<[u8; 32]> = (0..10).map(v).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let r = s.query(&K, BagKind::Sample, 4, 200, &mut || rng.next_u64());
            let got: HashSet<[u8; 32]> = values(&r).into_iter().collect();
            assert_eq!((r.len(), got.len()), (4, 4), "four distinct entries");
            assert!(got.is_subset(&all));
            seen.extend(got);
        }
        assert_eq!(seen, all, "every entry is drawn sometimes");
        let r = s.query(&K, BagKind::Sample, 50, 200, &mut || rng.next_u64());
        assert_eq!(values(&r).into_iter().collect::<HashSet<_>>(), all, "max above size gives all");
        // Counts and ages are carried along.
        assert!(r.iter().all(|e| e.count == 1 + u32::from(e.value[0] % 3) && e.seconds == 0));
    }

    #[test]
    fn sample_is_uniform() {
        let mut s = Bags::new(limits());
        for i in 0..10 {
            // Unequal popularity and age must not bias the sample.
            publish_n(&mut s, K, v(i), u32::from(i) * 10, 1 + u32::from(i), u64::from(i) * 1000);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
        let mut hits = [0u32; 10];
        let draws = 10_000;
        for _ in 0..draws {
            let r = s.query(&K, BagKind::Sample, 1, 10_000, &mut || rng.next_u64());
            assert_eq!(r.len(), 1);
            hits[r[0].value[0] as usize] += 1;
        }
        let expected = f64::from(draws) / 10.0;
        let chi2: f64 = hits.iter().map(|&h| (f64::from(h) - expected).powi(2) / expected).sum();
        // Chi-square with 9 degrees of freedom: P(X > 27.877) = 0.001.
        assert!(chi2 < 27.877, "chi-square {chi2} for {hits:?}");
    }

    #[test]
    fn entries_expire_after_the_ttl_and_republishing_refreshes() {
        let mut s = Bags::new(limits());
        assert!(s.add(K, v(1), publisher(1), 0));
        assert!(s.add(K, v(2), publisher(1), 0));
        assert!(s.add(K, v(1), publisher(2), TTL / 2));
        let r = query(&mut s, &K, BagKind::Popular, 20, TTL - 1);
        assert_eq!((r[0].value, r[0].count, r[0].seconds), (v(1), 2, (TTL / 2 - 1) / 1_000_000));
        assert_eq!(r.len(), 2);
        // At TTL publisher 1's publishes stop counting: v(2) is gone, v(1) has one publisher.
        let r = query(&mut s, &K, BagKind::Popular, 20, TTL);
        assert_eq!(values(&r), vec![v(1)]);
        assert_eq!(r[0].count, 1);
        assert_eq!(s.len(), 1);
        // Publisher 1 republishes: counted again, and outlives publisher 2.
        assert!(s.add(K, v(1), publisher(1), TTL));
        assert_eq!(query(&mut s, &K, BagKind::Popular, 20, TTL)[0].count, 2);
        s.expire(TTL / 2 + TTL);
        let r = query(&mut s, &K, BagKind::Recent, 20, TTL / 2 + TTL);
        assert_eq!((r.len(), r[0].count, r[0].seconds), (1, 1, TTL / 2 / 1_000_000));
        s.expire(2 * TTL);
        assert_eq!(s.len(), 0);
        assert!(s.bags.is_empty() && s.index.is_empty() && s.heap.is_empty());
        assert!(query(&mut s, &K, BagKind::Popular, 20, 2 * TTL).is_empty());
    }

    #[test]
    fn full_bag_evicts_least_popular_then_oldest() {
        let mut s = small(3, 100);
        publish_n(&mut s, K, v(1), 0, 2, 1);
        publish_n(&mut s, K, v(2), 10, 1, 2);
        publish_n(&mut s, K, v(3), 20, 1, 3);
        assert!(s.add(K, v(4), publisher(30), 4));
        let mut got = values(&query(&mut s, &K, BagKind::Popular, 20, 5));
        got.sort();
        assert_eq!(got, vec![v(1), v(3), v(4)], "v(2): one publisher, oldest");
        // Everyone stored is more popular than a newcomer: the newcomer is refused.
        publish_n(&mut s, K, v(3), 40, 1, 6);
        publish_n(&mut s, K, v(4), 50, 1, 6);
        assert!(!s.add(K, v(5), publisher(60), 7));
        assert_eq!(s.len(), 3);
        // Expired entries make room: only v(1), republished, is still live at TTL + 6.
        publish_n(&mut s, K, v(1), 70, 1, TTL);
        assert!(s.add(K, v(5), publisher(60), TTL + 6));
        let got = query(&mut s, &K, BagKind::Popular, 20, TTL + 6);
        assert_eq!(
            got.iter().map(|e| (e.value, e.count)).collect::<Vec<_>>(),
            vec![(v(5), 1), (v(1), 1)],
            "ties: newest first"
        );
    }

    #[test]
    fn churn_keeps_the_expiry_heap_bounded() {
        let mut s = small(3, 100);
        for i in 0..5000u32 {
            let mut val = [0u8; 32];
            val[..4].copy_from_slice(&i.to_be_bytes());
            assert!(s.add(K, val, publisher(i), u64::from(i)));
        }
        assert_eq!(s.len(), 3);
        assert!(s.heap.len() <= 2 * 3 + 1024 + 1, "heap {}", s.heap.len());
        assert_consistent(&s, 5000);
        s.expire(5000 + TTL);
        assert_eq!((s.len(), s.heap.len()), (0, 0));
    }

    #[test]
    fn total_bound_evicts_from_the_largest_bag() {
        let (k1, k2, k3) = (Id([1; 32]), Id([2; 32]), Id([3; 32]));
        let mut s = small(10, 4);
        publish_n(&mut s, k1, v(1), 0, 1, 1);
        publish_n(&mut s, k1, v(2), 10, 2, 2);
        publish_n(&mut s, k1, v(3), 20, 1, 3);
        publish_n(&mut s, k2, v(1), 30, 1, 0);
        assert!(s.add(k3, v(9), publisher(40), 5));
        assert_eq!(s.len(), 4);
        let mut got = values(&query(&mut s, &k1, BagKind::Popular, 20, 6));
        got.sort();
        assert_eq!(got, vec![v(2), v(3)], "k1 is largest; v(1) its least popular, oldest");
        assert_eq!(query(&mut s, &k2, BagKind::Popular, 20, 6).len(), 1);
        assert_eq!(query(&mut s, &k3, BagKind::Popular, 20, 6).len(), 1);
        // Equal sizes: the bag published to least recently gives way.
        let mut s = small(10, 2);
        publish_n(&mut s, k1, v(1), 0, 1, 1);
        publish_n(&mut s, k2, v(1), 0, 1, 2);
        assert!(s.add(k3, v(1), publisher(0), 3));
        assert!(query(&mut s, &k1, BagKind::Popular, 20, 4).is_empty());
        assert_eq!(query(&mut s, &k2, BagKind::Popular, 20, 4).len(), 1);
        // The newcomer's own bag is the largest and all of it is more popular: refused.
        let mut s = small(10, 2);
        publish_n(&mut s, k1, v(1), 0, 2, 1);
        publish_n(&mut s, k1, v(2), 0, 2, 1);
        assert!(!s.add(k1, v(3), publisher(9), 2));
        assert_eq!(s.len(), 2);
        // Expired entries anywhere are dropped before anything live is evicted.
        let mut s = small(10, 2);
        publish_n(&mut s, k1, v(1), 0, 3, 0);
        publish_n(&mut s, k2, v(1), 0, 1, TTL / 2);
        assert!(s.add(k3, v(1), publisher(0), TTL));
        assert!(query(&mut s, &k1, BagKind::Popular, 20, TTL).is_empty());
        assert_eq!(query(&mut s, &k2, BagKind::Popular, 20, TTL).len(), 1);
    }
}
