//! Attack 3, an `iam` flood: one connection to every honest peer, on which the attacker
//! claims `count` uids near the target, each at a port of its address where nothing listens,
//! plus the nonsense `#(iam 0 0)`. Admitted unverified, the fake contacts crowd out the real
//! nearest peers: stores near the target go nowhere.
//!
//! `rate`: rounds per second (each round sends every claim again on every connection, the
//! way an attacker keeps a poisoning fresh). A connection a peer closes is opened again.

use super::client::Hostile;
use super::ctx::{fresh_key, AttackStats, Ctx, Pace, Params};
use super::testnet::{attacker_ip, near_id, SYBIL_BITS};
use crate::id::Id;
use crate::wire::{Reply, Request};

/// Fake contacts' ports: nothing listens there on the attacker's address.
pub const DEAD_PORT_BASE: u16 = 40_000;

pub fn run(cx: &Ctx, p: &Params) {
    let mut rng = cx.rng(3);
    let claims: Vec<Request> = (0..p.count)
        .map(|i| Request::Iam {
            uid: near_id(&cx.net.target, SYBIL_BITS, &mut rng),
            port: Some(DEAD_PORT_BASE + i as u16),
        })
        .chain(std::iter::once(Request::Iam { uid: Id::ZERO, port: Some(0) }))
        .collect();
    let mut conns: Vec<Option<Hostile>> = cx.net.peers.iter().map(|_| None).collect();
    let mut pace = Pace::new(p.rate, 1, 0);
    while pace.next(cx) {
        for (peer, slot) in cx.net.peers.iter().zip(conns.iter_mut()) {
            if !cx.live() {
                break;
            }
            if slot.is_none() {
                match Hostile::connect(peer.addr(), Some(attacker_ip(1)), fresh_key(&mut rng)) {
                    Ok(h) => {
                        AttackStats::add(&cx.stats.connections, 1);
                        *slot = Some(h);
                    }
                    Err(_) => {
                        AttackStats::add(&cx.stats.closed, 1);
                        continue;
                    }
                }
            }
            let Some(h) = slot.as_mut() else { continue };
            let ok = h.send_requests(&claims).is_ok()
                && (0..claims.len()).all(|_| matches!(h.read_reply(), Ok(Reply::Welcome { .. })));
            AttackStats::add(&cx.stats.requests, claims.len() as u64);
            if !ok {
                AttackStats::add(&cx.stats.closed, 1);
                *slot = None;
            }
        }
    }
}
