//! The protocol core on a simulated network: no sockets, a virtual clock, fixed seeds.

use peer::core::{Op, OpResult};
use peer::sim::Sim;
use peer::wire::{Reply, Request};
use peer::Id;
use rand::{Rng, SeedableRng};

fn pct(v: &mut [u32], p: f64) -> u32 {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

#[test]
fn lookups_find_the_true_k_nearest_on_1000_peers() {
    let mut sim = Sim::new(1000, 11);
    sim.bootstrap_all();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut rounds = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..200 {
        let target = Id::random(&mut rng);
        let from = rng.gen_range(0..sim.len());
        match sim.run(from, Op::FindNodes { target }) {
            OpResult::Nodes { contacts, rounds: r, sent: s } => {
                let got: Vec<Id> = contacts.iter().map(|c| c.id).collect();
                let mut want = sim.true_nearest(&target, 21);
                want.retain(|id| *id != sim.peers[from].uid());
                want.truncate(20);
                assert_eq!(got, want, "lookup from {from} missed a nearest peer");
                rounds.push(r);
                sent.push(s as u32);
            }
            other => panic!("lookup failed: {other:?}"),
        }
    }
    println!(
        "1000 simulated peers, 200 lookups: rounds p50 {} p99 {} max {}; requests p50 {} p99 {}",
        pct(&mut rounds, 0.5),
        pct(&mut rounds, 0.99),
        pct(&mut rounds, 1.0),
        pct(&mut sent, 0.5),
        pct(&mut sent, 0.99)
    );
}

#[test]
fn set_and_ref_on_a_simulated_network_with_churn() {
    let mut sim = Sim::new(300, 21);
    sim.bootstrap_all();
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let mut keys = Vec::new();
    for i in 0..100 {
        let value: Vec<u8> = (0..100).map(|_| rng.gen()).collect();
        let from = rng.gen_range(0..sim.len());
        match sim.run(from, Op::Set { value: value.clone().into() }) {
            OpResult::Key(k) => assert_eq!(k, Id::hash(&value), "set {i}"),
            other => panic!("set {i} failed: {other:?}"),
        }
        keys.push((Id::hash(&value), value));
    }
    for (k, v) in &keys {
        let from = rng.gen_range(0..sim.len());
        assert_eq!(sim.run(from, Op::Ref { key: *k }), OpResult::Value(Some(v.clone().into())));
    }
    // A key nobody stored: "not found", in a few round trips, never by a timeout.
    let t0 = sim.now;
    assert_eq!(sim.run(5, Op::Ref { key: Id::random(&mut rng) }), OpResult::Value(None));
    assert!(sim.now - t0 < peer::consts::REQUEST_TIMEOUT_US);
    // Stop 30% of the peers; refs from survivors still find nearly everything.
    for i in 0..sim.len() {
        if rng.gen_bool(0.3) && i != 0 {
            sim.stop(i);
        }
    }
    let mut found = 0;
    for (k, v) in &keys {
        let from = loop {
            let f = rng.gen_range(0..sim.len());
            if !sim.is_stopped(f) {
                break f;
            }
        };
        if sim.run(from, Op::Ref { key: *k }) == OpResult::Value(Some(v.clone().into())) {
            found += 1;
        }
    }
    println!("after 30% churn: {found}/100 values found");
    assert!(found >= 98, "only {found}/100 found after churn");
}

#[test]
fn replies_naming_known_uids_at_false_addresses_do_not_evict_them() {
    let mut sim = Sim::new(300, 31);
    sim.bootstrap_all();
    let before: Vec<usize> = (0..sim.len()).map(|i| sim.peers[i].routing().len()).collect();
    // One peer in five answers `peers` requests with every contact moved to an address
    // where nobody listens (and a different key).
    sim.tamper = Some(Box::new(|peer, req, reply| match (req, reply) {
        (Request::Peers { .. }, Reply::Peers(cs)) if peer % 5 == 0 => Reply::Peers(
            cs.into_iter()
                .map(|mut c| {
                    c.addr = "127.250.0.1:9".parse().unwrap();
                    c.static_key = [7; 32];
                    c
                })
                .collect(),
        ),
        (_, r) => r,
    }));
    let mut rng = rand::rngs::StdRng::seed_from_u64(32);
    for _ in 0..100 {
        let target = Id::random(&mut rng);
        let from = 1 + rng.gen_range(0..sim.len() - 1);
        match sim.run(from, Op::FindNodes { target }) {
            OpResult::Nodes { contacts, .. } => {
                let mut want = sim.true_nearest(&target, 21);
                want.retain(|id| *id != sim.peers[from].uid());
                assert_eq!(contacts.len(), 20);
                let found = contacts.iter().filter(|c| want[..20].contains(&c.id)).count();
                assert!(found >= 18, "only {found} of the true 20 nearest found");
            }
            other => panic!("lookup failed: {other:?}"),
        }
    }
    let after: Vec<usize> = (0..sim.len()).map(|i| sim.peers[i].routing().len()).collect();
    let lost: usize = before.iter().zip(&after).map(|(b, a)| b.saturating_sub(*a)).sum();
    assert_eq!(lost, 0, "routing tables lost {lost} contacts to false addresses");
}

/// A set shares its value from the API down to every holder: each replica's `set` request
/// and each holder's stored copy are the caller's allocation, never a copy of it (the
/// simulator hands requests over without encoding them, so what arrives is what was sent).
#[test]
fn a_set_shares_its_value_with_every_replica() {
    use std::sync::{Arc, Mutex};
    let mut sim = Sim::new(60, 31);
    sim.bootstrap_all();
    let value: Arc<[u8]> = (0..4096u32).map(|i| i as u8).collect::<Vec<u8>>().into();
    let key = Id::hash(&value);
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (v, s) = (value.clone(), seen.clone());
    sim.tamper = Some(Box::new(move |_, req: &Request, reply: Reply| {
        if let Request::Set { value, .. } = req {
            s.lock().unwrap().push(Arc::ptr_eq(value, &v));
        }
        reply
    }));
    assert_eq!(sim.run(7, Op::Set { value: value.clone() }), OpResult::Key(key));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 4 && seen.iter().all(|&same| same), "set requests sharing the value: {seen:?}");
    let holders: Vec<usize> =
        (0..sim.len()).filter(|&i| sim.peers[i].store().get_value(&key, sim.now).is_some()).collect();
    assert_eq!(holders.len(), peer::consts::DEFAULT_REPLICATION as usize);
    for i in holders {
        let stored = sim.peers[i].store().get_value(&key, sim.now).unwrap();
        assert!(Arc::ptr_eq(&stored, &value), "peer {i} holds a copy");
    }
}
