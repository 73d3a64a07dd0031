//! Attack 1, unread replies: connections to the victim that send requests with large replies
//! (`ref` of a large value it holds; `peers`, which needs nothing stored) and never read one.
//! Without a bound on unsent output, the victim buffers every reply.
//!
//! `count`: connections (even ones send `ref`s, odd ones `peers`); `rate`: requests per
//! second per connection. A connection the victim closes is opened again.

use super::client::Hostile;
use super::ctx::{fresh_key, AttackStats, Ctx, Params};
use super::testnet::attacker_ip;
use crate::consts::MAX_VALUE_SIZE;
use crate::id::Id;
use crate::wire::{Reply, Request};
use rand::Rng;
use std::io;
use std::time::Duration;

/// How often each connection sends its share.
const TICK: Duration = Duration::from_millis(20);

pub fn run(cx: &Ctx, p: &Params) {
    let key = store_large(cx);
    std::thread::scope(|s| {
        for i in 0..p.count {
            s.spawn(move || connection(cx, p, i, key));
        }
    });
}

/// Store a value of the largest size at the victim (a few tries: it refuses keys it is not
/// among the nearest of). None if it never accepts: the `ref`s then get `peers` replies.
fn store_large(cx: &Ctx) -> Option<Id> {
    let mut rng = cx.rng(1);
    let mut h = Hostile::connect(cx.net.victim().addr(), Some(attacker_ip(1)), fresh_key(&mut rng)).ok()?;
    for _ in 0..16 {
        let value: Vec<u8> = (0..MAX_VALUE_SIZE).map(|_| rng.gen()).collect();
        let key = Id::hash(&value);
        if let Ok(Reply::Bool(true)) = h.request(&Request::Set { value: value.into(), lifetime: None }) {
            return Some(key);
        }
    }
    None
}

fn connection(cx: &Ctx, p: &Params, i: usize, key: Option<Id>) {
    let mut rng = cx.rng(100 + i as u64);
    let per_tick = ((p.rate * TICK.as_secs_f64()).ceil() as usize).max(1);
    let mut conn: Option<Hostile> = None;
    while cx.live() {
        let h = match conn.as_mut() {
            Some(h) => h,
            None => match Hostile::connect(cx.net.victim().addr(), Some(attacker_ip(1)), fresh_key(&mut rng)) {
                Ok(h) if h.set_nonblocking(true).is_ok() => {
                    AttackStats::add(&cx.stats.connections, 1);
                    conn.insert(h)
                }
                _ => {
                    AttackStats::add(&cx.stats.closed, 1);
                    cx.sleep(TICK);
                    continue;
                }
            },
        };
        // Only when the last batch is gone: the attacker's own memory stays small.
        let r = if h.pending() == 0 {
            let reqs: Vec<Request> = (0..per_tick)
                .map(|_| match (i % 2, key) {
                    (0, Some(key)) => Request::Ref { key },
                    _ => Request::Peers { key: Id::random(&mut rng) },
                })
                .collect();
            AttackStats::add(&cx.stats.requests, per_tick as u64);
            h.send_requests(&reqs)
        } else {
            h.flush()
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                AttackStats::add(&cx.stats.closed, 1);
                conn = None;
            }
        }
        cx.sleep(TICK);
    }
    if let Some(h) = conn {
        h.reset();
    }
}
