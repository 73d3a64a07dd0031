//! The routing table: 256 buckets by shared-prefix length, k contacts each, least recently
//! seen first. A full bucket does not drop anyone on its own: it answers "ping the oldest
//! first", and the core evicts that contact only if the ping fails (Kademlia's preference
//! for long-lived contacts, which resist flooding by fresh identities).

use crate::consts::K;
use crate::id::{Contact, Id};

#[derive(Clone, Copy, Debug)]
struct Entry {
    contact: Contact,
    last_seen: u64,
}

#[derive(Default, Clone, Debug)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// A contact waiting for the oldest entry's ping to fail.
    pending: Option<Contact>,
}

/// What `RoutingTable::insert` decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Insert {
    Added,
    Updated,
    /// The bucket is full: ping this (least recently seen) contact; if it fails call
    /// `evict_for_pending`, if it answers the newcomer is dropped.
    Ping(Contact),
    /// A ping is already pending for this bucket; the newcomer is dropped.
    Dropped,
    /// The uid is known with another static key (SPEC 3: a uid is bound to its first key),
    /// or it is our own uid.
    Rejected,
}

pub struct RoutingTable {
    me: Id,
    buckets: Vec<Bucket>,
    len: usize,
}

impl RoutingTable {
    pub fn new(me: Id) -> RoutingTable {
        RoutingTable { me, buckets: vec![Bucket::default(); 256], len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn me(&self) -> Id {
        self.me
    }

    /// Record that `c` was heard from at `now` (it answered us, or introduced itself).
    pub fn insert(&mut self, c: Contact, now: u64) -> Insert {
        let Some(b) = self.me.common_prefix(&c.id) else { return Insert::Rejected };
        let bucket = &mut self.buckets[b];
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
        if bucket.entries.len() < K {
            bucket.entries.push(Entry { contact: c, last_seen: now });
            self.len += 1;
            return Insert::Added;
        }
        if bucket.pending.is_some() {
            return Insert::Dropped;
        }
        bucket.pending = Some(c);
        Insert::Ping(bucket.entries[0].contact)
    }

    /// The pinged contact `old` failed: drop it and take the pending newcomer in its place.
    pub fn evict_for_pending(&mut self, old: &Id, now: u64) {
        let Some(b) = self.me.common_prefix(old) else { return };
        let removed = self.remove(old);
        let bucket = &mut self.buckets[b];
        if let Some(p) = bucket.pending.take() {
            if removed && bucket.entries.len() < K {
                bucket.entries.push(Entry { contact: p, last_seen: now });
                self.len += 1;
            }
        }
    }

    /// The pinged contact answered: the newcomer waiting for its bucket is dropped.
    pub fn drop_pending(&mut self, old: &Id) {
        if let Some(b) = self.me.common_prefix(old) {
            self.buckets[b].pending = None;
        }
    }

    /// Forget a contact (it failed a request). Returns whether it was there.
    pub fn remove(&mut self, id: &Id) -> bool {
        let Some(b) = self.me.common_prefix(id) else { return false };
        let bucket = &mut self.buckets[b];
        if let Some(i) = bucket.entries.iter().position(|e| e.contact.id == *id) {
            bucket.entries.remove(i);
            self.len -= 1;
            // A newcomer waiting on a full bucket gets the free place.
            if bucket.pending.map(|p| p.id) != Some(*id) {
                if let Some(p) = bucket.pending.take() {
                    bucket.entries.push(Entry { contact: p, last_seen: 0 });
                    self.len += 1;
                }
            }
            return true;
        }
        false
    }

    pub fn get(&self, id: &Id) -> Option<Contact> {
        let b = self.me.common_prefix(id)?;
        self.buckets[b].entries.iter().find(|e| e.contact.id == *id).map(|e| e.contact)
    }

    /// The static key a uid is bound to, if we know the uid.
    pub fn static_key_of(&self, id: &Id) -> Option<[u8; 32]> {
        self.get(id).map(|c| c.static_key)
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
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all.into_iter().map(|(_, c)| c).collect()
    }

    /// How many known contacts are nearer to `target` than we are (stopping at `limit`):
    /// a store is accepted only when fewer than K are (SPEC 1).
    pub fn nearer_than_me(&self, target: &Id, limit: usize) -> usize {
        let mine = self.me.distance(target);
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

    /// Indices of non-empty buckets, and the deepest one (for bootstrap's far-bucket refresh).
    pub fn deepest_bucket(&self) -> Option<usize> {
        self.buckets.iter().rposition(|b| !b.entries.is_empty())
    }

    pub fn bucket_len(&self, i: usize) -> usize {
        self.buckets[i].entries.len()
    }

    pub fn contacts(&self) -> impl Iterator<Item = Contact> + '_ {
        self.buckets.iter().flat_map(|b| b.entries.iter().map(|e| e.contact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn contact(id: Id, key: u8) -> Contact {
        Contact { id, addr: "127.0.0.1:1".parse().unwrap(), static_key: [key; 32] }
    }

    #[test]
    fn full_bucket_asks_for_a_ping_then_evicts() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let me = Id::random(&mut rng);
        let mut t = RoutingTable::new(me);
        let ids: Vec<Id> = (0..K + 2).map(|_| me.random_in_bucket(0, &mut rng)).collect();
        for (i, id) in ids.iter().take(K).enumerate() {
            assert_eq!(t.insert(contact(*id, 1), i as u64), Insert::Added);
        }
        assert_eq!(t.insert(contact(ids[K], 1), 100), Insert::Ping(contact(ids[0], 1)));
        assert_eq!(t.insert(contact(ids[K + 1], 1), 101), Insert::Dropped);
        t.evict_for_pending(&ids[0], 102);
        assert!(t.get(&ids[0]).is_none());
        assert!(t.get(&ids[K]).is_some());
        assert_eq!(t.len(), K);
        // A ping that succeeds keeps the old contact and drops the newcomer.
        assert_eq!(t.insert(contact(ids[K + 1], 1), 103), Insert::Ping(contact(ids[1], 1)));
        assert_eq!(t.insert(contact(ids[1], 1), 104), Insert::Updated);
        assert!(t.get(&ids[K + 1]).is_none());
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
}
