//! Attack 4, Sybils near a key: `count` listening peers with uids nearer the target than any
//! honest peer, all in the attacker's /24. Each introduces itself to every honest peer as a
//! real peer would (it dials from its own address with its own static key and sends `iam`
//! with its listening port) and answers the handshakes of those that dial it, XX or IK. Then
//! it betrays:
//! - `Swallow`: accepts every store (`#t`) and never gives a value back; `peers` and `ref`
//!   name the Sybils nearest the key, to keep lookups among them;
//! - `Dead`: as `Swallow`, but `peers` and `ref` name made-up contacts near the key at ports
//!   where nothing listens;
//! - `Silent`: completes handshakes, then never answers anything.
//!
//! `rate`: introduction rounds per second (each Sybil greets every honest peer again).
//! When the attack ends the Sybils leave: their listeners close.

use super::client::Hostile;
use super::ctx::{fresh_key, AttackStats, Ctx, Pace, Params};
use super::iam_flood::DEAD_PORT_BASE;
use super::listener::{Behaviour, Listener};
use super::testnet::{attacker_ip, near_id, SYBIL_BITS};
use crate::consts::K;
use crate::id::{Contact, Id};
use crate::wire::{Reply, Request};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// How a Sybil betrays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Variant {
    Swallow,
    Dead,
    Silent,
}

/// Sybil `i`'s address: its own in the attacker's /24 (127.0.9.11 and up), so a limit per
/// address alone does not stop them; one per /24 must.
fn sybil_ip(i: usize) -> std::net::IpAddr {
    attacker_ip(11 + (i % 200) as u8)
}

/// Made-up contacts near `key` at dead ports: the same for the same key, like a real table.
fn dead_contacts(key: &Id) -> Vec<Contact> {
    let mut rng = StdRng::from_seed(key.0);
    (0..K)
        .map(|i| Contact {
            id: near_id(key, SYBIL_BITS, &mut rng),
            addr: SocketAddr::new(attacker_ip(1), DEAD_PORT_BASE + 1000 + i as u16),
            static_key: fresh_key(&mut rng),
        })
        .collect()
}

/// The reply of a Sybil with `uid`; `all` holds every Sybil's contact once they listen.
fn answer(variant: Variant, uid: Id, all: &OnceLock<Vec<Contact>>, req: &Request, from: SocketAddr) -> Option<Reply> {
    let near = |key: &Id| match variant {
        Variant::Dead => dead_contacts(key),
        _ => {
            let mut cs = all.get().cloned().unwrap_or_default();
            cs.sort_by_key(|c| c.id.distance(key));
            cs.truncate(K);
            cs
        }
    };
    Some(match req {
        _ if variant == Variant::Silent => return None,
        Request::Iam { .. } => Reply::Welcome { ip: from.ip(), port: from.port(), uid },
        Request::Peers { key } | Request::Ref { key } => Reply::Peers(near(key)),
        Request::NamespaceRef { public_key, key } => Reply::Peers(near(&crate::sign::ns_target(public_key, key))),
        Request::Set { .. } | Request::BagAdd { .. } | Request::NamespaceSet { .. } => Reply::Bool(true),
        Request::BagQuery { .. } => Reply::Bag(Vec::new()),
    })
}

pub fn run(cx: &Ctx, p: &Params, variant: Variant) {
    let mut rng = cx.rng(4);
    let all: Arc<OnceLock<Vec<Contact>>> = Arc::default();
    let mut sybils = Vec::new();
    for i in 0..p.count {
        let (uid, secret) = (near_id(&cx.net.target, SYBIL_BITS, &mut rng), fresh_key(&mut rng));
        let a = all.clone();
        let b: Behaviour = Arc::new(move |req, from| answer(variant, uid, &a, req, from));
        match Listener::spawn(SocketAddr::new(sybil_ip(i), 0), secret, b) {
            Ok(l) => sybils.push((uid, secret, l)),
            Err(_) => AttackStats::add(&cx.stats.closed, 1),
        }
    }
    let _ = all
        .set(sybils.iter().map(|(uid, _, l)| Contact { id: *uid, addr: l.addr(), static_key: l.public() }).collect());
    let mut pace = Pace::new(p.rate, 1, 0);
    while pace.next(cx) {
        for (uid, secret, l) in &sybils {
            for peer in &cx.net.peers {
                if !cx.live() {
                    break;
                }
                introduce(cx, peer.addr(), *uid, *secret, l.addr());
            }
        }
    }
    for (_, _, l) in sybils {
        AttackStats::add(&cx.stats.received, AttackStats::get(&l.stats().requests));
        l.stop();
    }
}

/// Greet `to` as the Sybil `uid` listening at `at`, from its own address and key.
fn introduce(cx: &Ctx, to: SocketAddr, uid: Id, secret: [u8; 32], at: SocketAddr) {
    let greeted = Hostile::connect(to, Some(at.ip()), secret).and_then(|mut h| {
        AttackStats::add(&cx.stats.connections, 1);
        AttackStats::add(&cx.stats.requests, 1);
        let r = h.request(&Request::Iam { uid, port: Some(at.port()) });
        h.reset();
        r
    });
    match greeted {
        Ok(Reply::Welcome { .. }) => AttackStats::add(&cx.stats.accepted, 1),
        _ => AttackStats::add(&cx.stats.closed, 1),
    }
}
