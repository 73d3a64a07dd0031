//! Attack 6, connection churn: new authenticated connections to the victim, as fast as
//! `rate` per second, each with a fresh static key and one `peers` request answered (so it
//! carried traffic, as an established connection does), held open `count` at a time and
//! then reset, oldest first. Without fairness the victim's connection bound evicts its
//! honest, established connections for these newcomers.

use super::client::Hostile;
use super::ctx::{fresh_key, AttackStats, Ctx, Pace, Params};
use super::testnet::attacker_ip;
use crate::id::Id;
use crate::wire::{Reply, Request};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Threads opening connections (a handshake costs a few round trips of CPU on both sides).
const THREADS: usize = 3;
/// Each step of a churned connection gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(1);

pub fn run(cx: &Ctx, p: &Params) {
    let held: Mutex<VecDeque<Hostile>> = Mutex::new(VecDeque::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let held = &held;
            s.spawn(move || churn(cx, p, t, held));
        }
    });
    for h in held.into_inner().unwrap_or_else(|e| e.into_inner()) {
        h.reset();
    }
}

fn churn(cx: &Ctx, p: &Params, t: usize, held: &Mutex<VecDeque<Hostile>>) {
    let mut rng = cx.rng(600 + t as u64);
    let mut pace = Pace::new(p.rate, THREADS, t);
    let victim = cx.net.victim().addr();
    while pace.next(cx) {
        let opened = Hostile::connect_timeout(victim, Some(attacker_ip(1)), fresh_key(&mut rng), TIMEOUT)
            .and_then(|mut h| h.request(&Request::Peers { key: Id::random(&mut rng) }).map(|r| (h, r)));
        let (h, r) = match opened {
            Ok(x) => x,
            Err(_) => {
                AttackStats::add(&cx.stats.closed, 1);
                continue;
            }
        };
        AttackStats::add(&cx.stats.connections, 1);
        AttackStats::add(&cx.stats.requests, 1);
        AttackStats::add(&cx.stats.accepted, u64::from(matches!(r, Reply::Peers(_))));
        let old = {
            let mut q = held.lock().unwrap_or_else(|e| e.into_inner());
            q.push_back(h);
            if q.len() > p.count {
                q.pop_front()
            } else {
                None
            }
        };
        if let Some(o) = old {
            o.reset();
        }
    }
}
