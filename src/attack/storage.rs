//! Attack 5, a storage flood: `set`s of distinct values, mostly small with a large one now
//! and then, from the attacker into every honest peer, a fresh static key per connection (a
//! key costs nothing). Without per-source quotas the peers fill up and refuse honest stores,
//! and stay full (values live 24 hours).
//!
//! Peers are flooded one at a time, nearest to the target first (so the near-key stores feel
//! it soonest), each until it took `MAX_VALUES` of them (the limit is public) or refused a
//! whole batch; then the next, round and round.
//! A connection carries `PER_CONNECTION` stores, then the next has a new key. `count`:
//! connections at once (one thread each); `rate`: stores per second in all (0: as fast as
//! the peers take them).

use super::client::Hostile;
use super::ctx::{fresh_key, AttackStats, Ctx, Pace, Params};
use super::testnet::attacker_ip;
use crate::consts::MAX_VALUES;
use crate::id::Id;
use crate::wire::{Reply, Request};
use rand::RngCore;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Stores pipelined before their replies are read (within the 64 a connection may have
/// in flight).
const BATCH: usize = 32;
/// Stores on one connection before the next key and peer.
const PER_CONNECTION: usize = 4096;
/// Bytes of a small value.
const SMALL: usize = 32;
/// Bytes of a large value, and how often one comes (one store in `LARGE_EVERY`).
const LARGE: usize = 64 * 1024;
const LARGE_EVERY: usize = 256;
/// Leading bits each value shares with the uid of the peer it floods (tried for, about 16
/// hashes a value): a full peer evicts what is farthest from it, so values a little nearer
/// than random ones stay, and an honest value of a random key no longer displaces them.
const NEAR_PEER_BITS: usize = 4;

pub fn run(cx: &Ctx, p: &Params) {
    let mut order: Vec<usize> = (0..cx.net.peers.len()).collect();
    order.sort_by_key(|&i| cx.net.peers[i].uid().distance(&cx.net.target));
    let current = Current { at: AtomicUsize::new(0), taken: AtomicU64::new(0) };
    let order = Arc::new(order);
    std::thread::scope(|s| {
        for t in 0..p.count.max(1) {
            let (order, current) = (order.clone(), &current);
            s.spawn(move || flood(cx, p, t, &order, current));
        }
    });
}

/// A random value of `len` bytes whose key shares `NEAR_PEER_BITS` bits with `uid`.
fn near_peer(uid: &Id, len: usize, rng: &mut impl RngCore) -> Vec<u8> {
    let mut v = vec![0u8; len.max(8)];
    rng.fill_bytes(&mut v);
    loop {
        rng.fill_bytes(&mut v[..8]);
        if Id::hash(&v).common_prefix(uid).is_none_or(|b| b >= NEAR_PEER_BITS) {
            return v;
        }
    }
}

/// The peer being filled (an index into the flood's order) and the stores it took so far.
struct Current {
    at: AtomicUsize,
    taken: AtomicU64,
}

impl Current {
    /// `stored` more taken by the peer at `at`: move on once it is full (once, whichever
    /// thread sees it first).
    fn took(&self, at: usize, stored: u64) {
        let full = stored == 0 || self.taken.fetch_add(stored, Ordering::Relaxed) + stored >= MAX_VALUES as u64;
        if full && self.at.compare_exchange(at, at + 1, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.taken.store(0, Ordering::Relaxed);
        }
    }
}

/// One connection at a time to the peer being filled.
fn flood(cx: &Ctx, p: &Params, t: usize, order: &[usize], current: &Current) {
    let mut rng = cx.rng(500 + t as u64);
    let mut pace = Pace::new(p.rate / BATCH as f64, p.count.max(1), t);
    let mut sent = 0usize;
    while cx.live() {
        let at = current.at.load(Ordering::Relaxed);
        let peer = &cx.net.peers[order[at % order.len()]];
        let Ok(mut h) = Hostile::connect(peer.addr(), Some(attacker_ip(1)), fresh_key(&mut rng)) else {
            AttackStats::add(&cx.stats.closed, 1);
            cx.sleep(std::time::Duration::from_millis(20));
            continue;
        };
        AttackStats::add(&cx.stats.connections, 1);
        let mut on_conn = 0;
        while on_conn < PER_CONNECTION && pace.next(cx) {
            let batch: Vec<Request> = (0..BATCH)
                .map(|i| {
                    let len = if (sent + i).is_multiple_of(LARGE_EVERY) { LARGE } else { SMALL };
                    Request::Set { value: near_peer(&peer.uid(), len, &mut rng).into(), lifetime: None }
                })
                .collect();
            sent += BATCH;
            on_conn += BATCH;
            AttackStats::add(&cx.stats.requests, BATCH as u64);
            let bytes =
                batch.iter().map(|r| if let Request::Set { value, .. } = r { value.len() } else { 0 }).sum::<usize>();
            AttackStats::add(&cx.stats.bytes, bytes as u64);
            if h.send_requests(&batch).is_err() {
                AttackStats::add(&cx.stats.closed, 1);
                break;
            }
            let (mut stored, mut replies) = (0, 0);
            while replies < BATCH {
                match h.read_reply() {
                    Ok(r) => stored += u64::from(r == Reply::Bool(true)),
                    Err(_) => break,
                }
                replies += 1;
            }
            AttackStats::add(&cx.stats.accepted, stored);
            if replies < BATCH {
                AttackStats::add(&cx.stats.closed, 1);
                break;
            }
            current.took(at, stored);
            if current.at.load(Ordering::Relaxed) != at {
                break;
            }
        }
        h.reset();
    }
}
