//! The routing table: buckets by shared-prefix length, k contacts each, least recently seen
//! first. A full bucket does not drop anyone on its own: a newcomer waits as the bucket's
//! replacement, and when the oldest contact has not been heard from for a while the table
//! answers "ping it first"; the core evicts it only if the ping fails (Kademlia's preference
//! for long-lived contacts, which resist flooding by fresh identities). A contact heard from
//! recently is alive: pinging it would only cost traffic (and, at scale, a storm of pings).
//!
//! Admission (SECURITY.md): the core inserts only contacts that proved their address, key
//! and uid (they answered our `iam` at that address); the table itself refuses nonsense (our
//! own uid, uid 0, port 0, an unspecified address), a uid known with another key, a key
//! known under another uid, and a newcomer past the address limits of `Diversity` (per IP
//! address and per prefix, in its bucket and in the whole table).
//!
//! Contacts joining and leaving are noted for the transport (`take_changes`), which keeps the
//! connections to routing contacts warm in preference to others.

use crate::consts::{K, PING_STALE_US};
use crate::diversity::{Diversity, Tally};
use crate::id::{Contact, Id};
use std::net::SocketAddr;

/// Joins and leaves noted for the transport at most between two `take_changes`; past it they
/// are dropped (the transport then learns from the next request to the contact).
const MAX_CHANGES: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Entry {
    contact: Contact,
    last_seen: u64,
}

#[derive(Default, Clone, Debug)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// The newest contact waiting for a place (when the oldest fails a ping or a request).
    pending: Option<Contact>,
    /// A ping of the oldest entry is in flight.
    pinging: bool,
}

/// What `RoutingTable::insert` decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Insert {
    Added,
    Updated,
    /// The bucket is full and its oldest contact is stale: ping it; if the ping fails call
    /// `evict_for_pending`, if it answers `drop_pending`.
    Ping(Contact),
    /// The bucket is full of live contacts: the newcomer waits as its replacement.
    Dropped,
    /// The uid is known with another static key (PROTOCOL.md §1: a uid is bound to its first key),
    /// the key is known under another uid, the contact is nonsense (our own uid, uid 0, port
    /// 0, an unspecified address), or its address or prefix has its share of the table.
    Rejected,
}

pub struct RoutingTable {
    me: Id,
    /// Grown on demand up to the deepest bucket in use: beyond log2(network size) or so
    /// every bucket is empty, and 256 empty buckets would cost ~30 KiB a peer.
    buckets: Vec<Bucket>,
    len: usize,
    diversity: Diversity,
    /// Addresses of contacts that joined (true) or left (false) since `take_changes`.
    changes: Vec<(SocketAddr, bool)>,
}

impl RoutingTable {
    pub fn new(me: Id) -> RoutingTable {
        Self::with_diversity(me, Diversity::default())
    }

    pub fn with_diversity(me: Id, diversity: Diversity) -> RoutingTable {
        RoutingTable { me, buckets: Vec::new(), len: 0, diversity, changes: Vec::new() }
    }

    /// The address limits this table keeps.
    pub fn diversity(&self) -> &Diversity {
        &self.diversity
    }

    /// Whether a contact not in the table may enter it: not nonsense, its key not bound to
    /// another uid, and its address within the limits of bucket `b` and of the table.
    fn admissible(&self, c: &Contact, b: usize) -> bool {
        let ip = c.addr.ip();
        if c.id == Id::ZERO || c.addr.port() == 0 || ip.is_unspecified() || ip.is_multicast() {
            return false;
        }
        let d = &self.diversity;
        let (mut bucket, mut table) = (Tally::default(), Tally::default());
        for (i, bk) in self.buckets.iter().enumerate() {
            for e in &bk.entries {
                // All zero: a program-supplied transport, which has no keys.
                if e.contact.static_key == c.static_key && c.static_key != [0; 32] {
                    return false;
                }
                if d.counts(e.contact.addr.ip()) {
                    table.add(d, e.contact.addr.ip());
                    if i == b {
                        bucket.add(d, e.contact.addr.ip());
                    }
                }
            }
        }
        bucket.fits(d, ip, d.ip_per_bucket, d.prefix_per_bucket) && table.fits(d, ip, d.ip_per_table, d.prefix_per_table)
    }

    fn bucket_mut(&mut self, b: usize) -> &mut Bucket {
        if self.buckets.len() <= b {
            self.buckets.resize_with(b + 1, Bucket::default);
        }
        &mut self.buckets[b]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Record that `c` was heard from at `now` (it answered us, or introduced itself).
    pub fn insert(&mut self, c: Contact, now: u64) -> Insert {
        let Some(b) = self.me.common_prefix(&c.id) else { return Insert::Rejected };
        let bucket = self.bucket_mut(b);
        if let Some(i) = bucket.entries.iter().position(|e| e.contact.id == c.id) {
            let old = bucket.entries[i].contact;
            if old.static_key != c.static_key {
                return Insert::Rejected;
            }
            let mut e = bucket.entries.remove(i);
            e.contact.addr = c.addr;
            e.last_seen = now;
            bucket.entries.push(e);
            if bucket.pending.map(|p| p.id) == Some(c.id) {
                bucket.pending = None;
            }
            return Insert::Updated;
        }
        if !self.admissible(&c, b) {
            return Insert::Rejected;
        }
        let bucket = &mut self.buckets[b];
        if bucket.entries.len() < K {
            bucket.entries.push(Entry { contact: c, last_seen: now });
            self.len += 1;
            self.note(c.addr, true);
            return Insert::Added;
        }
        bucket.pending = Some(c);
        if bucket.pinging || now.saturating_sub(bucket.entries[0].last_seen) < PING_STALE_US {
            return Insert::Dropped;
        }
        bucket.pinging = true;
        Insert::Ping(bucket.entries[0].contact)
    }

    /// Whether `c` (not in the table) would take a place now or after a ping: its bucket
    /// has room, or its oldest contact is stale. A newcomer for a bucket of live contacts
    /// is not worth checking (it would only wait as the replacement).
    pub fn has_room_for(&self, c: &Contact, now: u64) -> bool {
        let Some(b) = self.me.common_prefix(&c.id) else { return false };
        match self.buckets.get(b) {
            None => true,
            Some(bk) => {
                bk.entries.len() < K
                    || (!bk.pinging && bk.entries.first().is_some_and(|e| now.saturating_sub(e.last_seen) >= PING_STALE_US))
            }
        }
    }

    /// The pinged contact `old` failed: drop it and take the pending newcomer in its place.
    pub fn evict_for_pending(&mut self, old: &Id, now: u64) {
        let Some(b) = self.me.common_prefix(old) else { return };
        // `remove` gives the free place to the waiting newcomer.
        self.remove(old);
        if let Some(bucket) = self.buckets.get_mut(b) {
            bucket.pinging = false;
            if let Some(e) = bucket.entries.last_mut() {
                e.last_seen = e.last_seen.max(now);
            }
        }
    }

    /// The pinged contact answered: it stays, and the newcomer keeps waiting.
    pub fn drop_pending(&mut self, old: &Id) {
        if let Some(bucket) = self.me.common_prefix(old).and_then(|b| self.buckets.get_mut(b)) {
            bucket.pinging = false;
        }
    }

    /// Forget a contact (it failed a request). Returns whether it was there.
    pub fn remove(&mut self, id: &Id) -> bool {
        let Some(bucket) = self.me.common_prefix(id).and_then(|b| self.buckets.get_mut(b)) else { return false };
        if let Some(i) = bucket.entries.iter().position(|e| e.contact.id == *id) {
            let gone = bucket.entries.remove(i).contact.addr;
            self.len -= 1;
            // A newcomer waiting on a full bucket gets the free place.
            let mut joined = None;
            if bucket.pending.map(|p| p.id) != Some(*id) {
                if let Some(p) = bucket.pending.take() {
                    bucket.entries.push(Entry { contact: p, last_seen: 0 });
                    self.len += 1;
                    joined = Some(p.addr);
                }
            }
            self.note(gone, false);
            if let Some(a) = joined {
                self.note(a, true);
            }
            return true;
        }
        false
    }

    fn note(&mut self, addr: SocketAddr, joined: bool) {
        if self.changes.len() < MAX_CHANGES {
            self.changes.push((addr, joined));
        }
    }

    /// The addresses of contacts that joined (true) or left (false) the table since the last
    /// call, oldest first.
    pub fn take_changes(&mut self) -> Vec<(SocketAddr, bool)> {
        std::mem::take(&mut self.changes)
    }

    pub fn get(&self, id: &Id) -> Option<Contact> {
        let b = self.me.common_prefix(id)?;
        self.buckets.get(b)?.entries.iter().find(|e| e.contact.id == *id).map(|e| e.contact)
    }

    /// Up to `n` contacts nearest to `target`, nearest first.
    pub fn closest(&self, target: &Id, n: usize) -> Vec<Contact> {
        let mut all: Vec<(Id, Contact)> = Vec::with_capacity(self.len);
        for b in &self.buckets {
            for e in &b.entries {
                all.push((e.contact.id.distance(target), e.contact));
            }
        }
        if all.len() > n {
            all.select_nth_unstable_by(n, |a, b| a.0.cmp(&b.0));
            all.truncate(n);
        }
        all.sort_unstable_by_key(|a| a.0);
        all.into_iter().map(|(_, c)| c).collect()
    }

    /// How many known contacts are nearer to `target` than we are (stopping at `limit`):
    /// a store is accepted only when fewer than K are (PROTOCOL.md §6).
    pub fn nearer_than_me(&self, target: &Id, limit: usize) -> usize {
        self.nearer_than(target, &self.me.distance(target), limit)
    }

    /// How many known contacts are nearer to `target` than the distance `than` (stopping at
    /// `limit`).
    pub fn nearer_than(&self, target: &Id, than: &Id, limit: usize) -> usize {
        let mine = *than;
        let mut n = 0;
        for b in &self.buckets {
            for e in &b.entries {
                if e.contact.id.distance(target) < mine {
                    n += 1;
                    if n >= limit {
                        return n;
                    }
                }
            }
        }
        n
    }

    /// Buckets 0..=`depth` that no contact of was heard from since `before` (empty ones
    /// included): Kademlia refreshes such a bucket with a lookup of a random uid in it.
    pub fn stale_buckets(&self, before: u64, depth: usize) -> Vec<usize> {
        (0..=depth.min(255))
            .filter(|&i| self.buckets.get(i).and_then(|b| b.entries.last()).is_none_or(|e| e.last_seen < before))
            .collect()
    }

    /// Every contact, for saving to a data directory.
    pub fn contacts(&self) -> Vec<Contact> {
        self.buckets.iter().flat_map(|b| b.entries.iter().map(|e| e.contact)).collect()
    }

    /// Contacts per bucket, up to the deepest bucket allocated.
    pub fn bucket_sizes(&self) -> Vec<u32> {
        self.buckets.iter().map(|b| b.entries.len() as u32).collect()
    }

    pub fn bucket_len(&self, i: usize) -> usize {
        self.buckets.get(i).map_or(0, |b| b.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;
    use rand::SeedableRng;
    use std::collections::HashMap;

    /// Contact `id` with its key number `key`: distinct uids never share a key.
    fn contact(id: Id, key: u8) -> Contact {
        Contact { id, addr: "127.0.0.1:1".parse().unwrap(), static_key: Id::hash_parts(&[&id.0, &[key]]).0 }
    }

    #[test]
    fn admission_refuses_nonsense_shared_keys_and_crowded_addresses() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let me = Id::random(&mut rng);
        let mut t = RoutingTable::with_diversity(me, crate::diversity::Diversity::strict());
        let at = |id: Id, addr: &str| Contact { id, addr: addr.parse().unwrap(), static_key: Id::hash(&id.0).0 };
        assert_eq!(t.insert(at(Id::ZERO, "127.0.1.1:7"), 0), Insert::Rejected, "uid 0");
        assert_eq!(t.insert(at(Id::random(&mut rng), "127.0.1.1:0"), 0), Insert::Rejected, "port 0");
        assert_eq!(t.insert(at(Id::random(&mut rng), "0.0.0.0:7"), 0), Insert::Rejected, "unspecified");
        let a = at(me.random_in_bucket(0, &mut rng), "127.0.1.1:7");
        assert_eq!(t.insert(a, 0), Insert::Added);
        let same_key = Contact { id: me.random_in_bucket(1, &mut rng), ..a };
        assert_eq!(t.insert(same_key, 0), Insert::Rejected, "a key is bound to one uid");
        // Bucket 0: two per IP address, four per /24.
        assert_eq!(t.insert(at(me.random_in_bucket(0, &mut rng), "127.0.1.1:8"), 0), Insert::Added);
        assert_eq!(t.insert(at(me.random_in_bucket(0, &mut rng), "127.0.1.1:9"), 0), Insert::Rejected);
        assert_eq!(t.insert(at(me.random_in_bucket(0, &mut rng), "127.0.1.2:9"), 0), Insert::Added);
        assert_eq!(t.insert(at(me.random_in_bucket(0, &mut rng), "127.0.1.3:9"), 0), Insert::Added);
        assert_eq!(t.insert(at(me.random_in_bucket(0, &mut rng), "127.0.1.4:9"), 0), Insert::Rejected);
        assert_eq!(t.insert(at(me.random_in_bucket(0, &mut rng), "127.0.2.4:9"), 0), Insert::Added);
        // The whole table: four per IP address (two more in other buckets), then refused.
        assert_eq!(t.insert(at(me.random_in_bucket(1, &mut rng), "127.0.1.1:10"), 0), Insert::Added);
        assert_eq!(t.insert(at(me.random_in_bucket(2, &mut rng), "127.0.1.1:11"), 0), Insert::Added);
        assert_eq!(t.insert(at(me.random_in_bucket(3, &mut rng), "127.0.1.1:12"), 0), Insert::Rejected);
        // The default does not count loopback: a local test network on one address works.
        let mut t = RoutingTable::new(me);
        for port in 1..=30 {
            let r = t.insert(at(me.random_in_bucket(port as usize % 3, &mut rng), &format!("127.0.0.1:{port}")), 0);
            assert_eq!(r, Insert::Added);
        }
    }

    /// Joins and leaves are noted for the transport, a replacement's join after the leave.
    #[test]
    fn joins_and_leaves_are_noted() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let me = Id::random(&mut rng);
        let mut t = RoutingTable::new(me);
        let at = |id: Id, port: u16| Contact { id, addr: ([127, 0, 0, 1], port).into(), static_key: Id::hash(&id.0).0 };
        let first = at(me.random_in_bucket(0, &mut rng), 1);
        assert_eq!(t.insert(first, 0), Insert::Added);
        assert_eq!(t.insert(first, 5), Insert::Updated);
        for port in 2..=K as u16 {
            assert_eq!(t.insert(at(me.random_in_bucket(0, &mut rng), port), 0), Insert::Added);
        }
        let newcomer = at(me.random_in_bucket(0, &mut rng), 99);
        assert!(matches!(t.insert(newcomer, 1), Insert::Ping(_) | Insert::Dropped));
        assert_eq!(t.take_changes().len(), K, "one per join, none for an update or a waiting newcomer");
        assert!(t.take_changes().is_empty());
        assert!(t.remove(&first.id));
        assert_eq!(t.take_changes(), vec![(first.addr, false), (newcomer.addr, true)]);
    }

    #[test]
    fn full_bucket_asks_for_a_ping_then_evicts() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let me = Id::random(&mut rng);
        let mut t = RoutingTable::new(me);
        let ids: Vec<Id> = (0..K + 3).map(|_| me.random_in_bucket(0, &mut rng)).collect();
        for (i, id) in ids.iter().take(K).enumerate() {
            assert_eq!(t.insert(contact(*id, 1), i as u64), Insert::Added);
        }
        // Everyone was heard from recently: no ping, the newcomer waits.
        assert_eq!(t.insert(contact(ids[K], 1), 100), Insert::Dropped);
        // Once the oldest is stale, a newcomer triggers one ping, and only one at a time.
        let later = PING_STALE_US + 1000;
        assert_eq!(t.insert(contact(ids[K], 1), later), Insert::Ping(contact(ids[0], 1)));
        assert_eq!(t.insert(contact(ids[K + 1], 1), later + 1), Insert::Dropped);
        // The ping fails: the oldest goes, the newest waiting contact takes its place.
        t.evict_for_pending(&ids[0], later + 2);
        assert!(t.get(&ids[0]).is_none());
        assert!(t.get(&ids[K + 1]).is_some());
        assert_eq!(t.len(), K);
        // A ping that succeeds keeps the old contact.
        assert_eq!(t.insert(contact(ids[K + 2], 1), later + 3), Insert::Ping(contact(ids[1], 1)));
        t.drop_pending(&ids[1]);
        assert_eq!(t.insert(contact(ids[1], 1), later + 4), Insert::Updated);
        assert!(t.get(&ids[K + 2]).is_none());
        // A contact that fails a request leaves its place to the waiting newcomer.
        assert!(t.remove(&ids[2]));
        assert!(t.get(&ids[K + 2]).is_some());
        assert_eq!(t.len(), K);
    }

    #[test]
    fn uid_bound_to_first_key_and_closest_sorted() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let me = Id::random(&mut rng);
        let mut t = RoutingTable::new(me);
        assert_eq!(t.insert(contact(me, 1), 0), Insert::Rejected);
        let mut ids = vec![];
        for _ in 0..200 {
            let id = Id::random(&mut rng);
            if t.insert(contact(id, 1), 0) == Insert::Added {
                ids.push(id);
            }
        }
        assert_eq!(t.insert(contact(ids[0], 2), 1), Insert::Rejected);
        let target = Id::random(&mut rng);
        let got = t.closest(&target, K);
        let mut want = ids.clone();
        want.sort_by_key(|i| i.distance(&target));
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), want[..K].to_vec());
        assert!(t.remove(&ids[0]));
        assert!(!t.remove(&ids[0]));
    }

    /// What the table must hold after any sequence of operations.
    fn check_invariants(t: &RoutingTable) {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for (b, bucket) in t.buckets.iter().enumerate() {
            assert!(bucket.entries.len() <= K, "bucket {b} over K");
            for e in &bucket.entries {
                assert_eq!(t.me.common_prefix(&e.contact.id), Some(b), "contact in the wrong bucket");
                assert!(seen.insert(e.contact.id), "uid twice in the table");
            }
            if let Some(p) = bucket.pending {
                assert!(bucket.entries.iter().all(|e| e.contact.id != p.id), "pending contact also in the bucket");
                assert_eq!(t.me.common_prefix(&p.id), Some(b), "pending contact for the wrong bucket");
            }
            total += bucket.entries.len();
        }
        assert_eq!(t.len(), total);
        assert!(!seen.contains(&t.me));
    }

    fn all_contacts(t: &RoutingTable) -> Vec<Contact> {
        t.buckets.iter().flat_map(|b| b.entries.iter().map(|e| e.contact)).collect()
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert { id: usize, key: u8, dt: u64 },
        Remove { id: usize },
        PingFailed { id: usize },
        PingAnswered { id: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct uids and keys, and time steps around the ping threshold, so buckets
        // fill, pings are asked for, and keys collide.
        let id = 0..60usize;
        prop_oneof![
            4 => (id.clone(), 0..3u8, prop_oneof![Just(0u64), Just(1_000), Just(PING_STALE_US + 1)])
                .prop_map(|(id, key, dt)| Op::Insert { id, key, dt }),
            1 => id.clone().prop_map(|id| Op::Remove { id }),
            1 => id.clone().prop_map(|id| Op::PingFailed { id }),
            1 => id.prop_map(|id| Op::PingAnswered { id }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: RngSeed::Fixed(17), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any sequence of inserts, removals and ping outcomes keeps the table well formed, a
        /// present uid keeps the key it entered with, and `closest` and `nearer_than_me` agree
        /// with a brute-force sort of what the table holds.
        #[test]
        fn any_operations_keep_the_table_consistent(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..300)) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let me = Id::random(&mut rng);
            // Uids crowded into the first four buckets (so they overflow), and a few anywhere.
            let ids: Vec<Id> = (0..60).map(|i| if i < 50 { me.random_in_bucket(i % 4, &mut rng) } else { Id::random(&mut rng) }).collect();
            let mut t = RoutingTable::new(me);
            let mut now = 0;
            for op in ops {
                let before: HashMap<Id, Contact> = all_contacts(&t).into_iter().map(|c| (c.id, c)).collect();
                match op {
                    Op::Insert { id, key, dt } => {
                        now += dt;
                        let c = contact(ids[id], key);
                        let r = t.insert(c, now);
                        match before.get(&c.id) {
                            Some(old) if old.static_key != c.static_key => prop_assert_eq!(r, Insert::Rejected),
                            Some(_) => prop_assert_eq!(r, Insert::Updated),
                            None => prop_assert!(r != Insert::Updated),
                        }
                        if let Insert::Ping(old) = r {
                            prop_assert!(before.contains_key(&old.id), "pings a contact of the table");
                            prop_assert_eq!(t.me.common_prefix(&old.id), t.me.common_prefix(&c.id));
                        }
                    }
                    Op::Remove { id } => prop_assert_eq!(t.remove(&ids[id]), before.contains_key(&ids[id])),
                    Op::PingFailed { id } => t.evict_for_pending(&ids[id], now),
                    Op::PingAnswered { id } => t.drop_pending(&ids[id]),
                }
                check_invariants(&t);
                for c in all_contacts(&t) {
                    if let Some(old) = before.get(&c.id) {
                        prop_assert_eq!(old.static_key, c.static_key, "a present uid kept its key");
                    }
                    prop_assert_eq!(t.get(&c.id), Some(c));
                }
            }
            let contacts = all_contacts(&t);
            for _ in 0..5 {
                let target = Id::random(&mut rng);
                let mut want = contacts.clone();
                want.sort_by_key(|c| c.id.distance(&target));
                for n in [0, 1, 7, K, 200] {
                    let got = t.closest(&target, n);
                    prop_assert_eq!(&got[..], &want[..n.min(want.len())]);
                }
                let mine = me.distance(&target);
                let nearer = contacts.iter().filter(|c| c.id.distance(&target) < mine).count();
                prop_assert_eq!(t.nearer_than_me(&target, K), nearer.min(K));
            }
        }
    }

}
