//! Bags and namespaces on a simulated network of 1,000 peers (virtual clock, no sockets),
//! including hostile peers that forge, replay and lie.

use peer::consts::{BAG_ENTRY_TTL_US, MAX_BAG_ENTRIES_PER_KEY};
use peer::core::{Op, OpResult};
use peer::sim::Sim;
use peer::wire::{Reply, Request};
use peer::{sign, BagKind, Id};
use rand::{Rng, SeedableRng};

fn values(r: OpResult) -> Vec<[u8; 32]> {
    match r {
        OpResult::Values(v) => v,
        other => panic!("expected values, got {other:?}"),
    }
}

fn network(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(n, seed);
    sim.bootstrap_all();
    sim
}

#[test]
fn bags_order_by_publishers_and_recency_and_expire() {
    let mut sim = network(1000, 31);
    let mut rng = rand::rngs::StdRng::seed_from_u64(32);
    let key = Id::random(&mut rng);
    // Value v is published by v+1 distinct peers; peer 0 also republishes value 0 many times.
    for v in 0..8u8 {
        for p in 0..=v as usize {
            let r = sim.run(10 + p * 37, Op::BagPublish { key, value: [v; 32] });
            assert_eq!(r, OpResult::Done);
        }
        sim.advance(1_000_000);
    }
    for _ in 0..50 {
        assert_eq!(sim.run(10, Op::BagPublish { key, value: [0; 32] }), OpResult::Done);
    }
    let popular = values(sim.run(500, Op::BagQuery { kind: BagKind::Popular, key, cap: 20 }));
    let want: Vec<[u8; 32]> = (0..8u8).rev().map(|v| [v; 32]).collect();
    assert_eq!(popular, want, "most distinct publishers first; republishing counts once");
    // Recency: value 0 was republished last, then 7, 6, ...
    let recent = values(sim.run(600, Op::BagQuery { kind: BagKind::Recent, key, cap: 3 }));
    assert_eq!(recent, vec![[0; 32], [7; 32], [6; 32]]);
    // Live publishers re-announce their entries (every BAG_REPUBLISH_US): past the TTL, all
    // are still there.
    sim.advance(BAG_ENTRY_TTL_US + 60_000_000);
    let kept = values(sim.run(650, Op::BagQuery { kind: BagKind::Popular, key, cap: 20 }));
    assert_eq!(kept, want, "re-announced entries live on");
    // Expiry: once every publisher forgot the bag, after the TTL the entries are gone.
    for p in 0..8 {
        assert!(sim.peers[10 + p * 37].forget(&key) >= 1);
    }
    sim.advance(BAG_ENTRY_TTL_US + 60_000_000);
    assert_eq!(sim.run(700, Op::BagPublish { key, value: [9; 32] }), OpResult::Done);
    let after = values(sim.run(701, Op::BagQuery { kind: BagKind::Popular, key, cap: 20 }));
    assert_eq!(after, vec![[9; 32]], "entries expire unless published again");
}

#[test]
fn bag_sample_is_uniform_and_bags_are_bounded() {
    let mut sim = network(1000, 41);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let key = Id::random(&mut rng);
    let n_values = 10u8;
    for v in 0..n_values {
        assert_eq!(sim.run(rng.gen_range(0..1000), Op::BagPublish { key, value: [v; 32] }), OpResult::Done);
    }
    let draws = 2000;
    let mut counts = vec![0u32; n_values as usize];
    for _ in 0..draws {
        let got = values(sim.run(rng.gen_range(0..1000), Op::BagQuery { kind: BagKind::Sample, key, cap: 1 }));
        assert_eq!(got.len(), 1);
        counts[got[0][0] as usize] += 1;
    }
    let expected = draws as f64 / n_values as f64;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
    println!("sample counts {counts:?}, chi-square {chi2:.2} (9 degrees of freedom, 0.999 critical 27.88)");
    assert!(chi2 < 27.88, "sample is not uniform: chi-square {chi2}");

    // A key's bag is bounded: publishing more than the bound keeps at most the bound.
    let key2 = Id::random(&mut rng);
    let holder = sim.true_nearest(&key2, 1)[0];
    let hi = (0..1000).find(|&i| sim.peers[i].uid() == holder).unwrap();
    let addr = sim.contact(0).addr;
    for i in 0..(MAX_BAG_ENTRIES_PER_KEY + 50) {
        let mut v = [0u8; 32];
        v[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let now = sim.now;
        sim.peers[hi].handle_request(now, addr, [1; 32], Request::BagAdd { key: key2, value: v });
    }
    let (_, _, entries, _) = sim.peers[hi].store().counts();
    assert!(entries <= MAX_BAG_ENTRIES_PER_KEY + 10, "bag holds {entries}");
}

#[test]
fn namespaces_overwrite_refuse_rollback_forgery_and_converge() {
    let mut sim = network(1000, 51);
    let mut rng = rand::rngs::StdRng::seed_from_u64(52);
    let (secret, public) = sign::keypair(&mut rand::rngs::OsRng);
    let key = [7u8; 32];
    let set = |sim: &mut Sim, from: usize, value: [u8; 32], seq_floor: u64| match sim
        .run(from, Op::NamespaceSet { secret, public_key: public, key, value, seq_floor })
    {
        OpResult::Signature(s) => s,
        other => panic!("namespace set failed: {other:?}"),
    };
    let get = |sim: &mut Sim, from: usize| match sim.run(from, Op::NamespaceRef { public_key: public, key, pin: None })
    {
        OpResult::Record(r) => r,
        other => panic!("namespace ref failed: {other:?}"),
    };
    let s1 = set(&mut sim, 3, [1; 32], 100);
    assert_eq!(get(&mut sim, 900), Some(([1; 32], s1)));
    // A later set wins even with an older clock: seq goes above what the network holds.
    let s2 = set(&mut sim, 4, [2; 32], 50);
    assert_eq!(get(&mut sim, 901), Some(([2; 32], s2)));
    // The old version can still be pinned where it survives? It was replaced everywhere.
    assert_eq!(sim.run(902, Op::NamespaceRef { public_key: public, key, pin: Some(s1) }), OpResult::Record(None));

    // Replaying the old record (seq 100) to the holders is refused (rollback).
    let target = peer::sign::ns_target(&public, &key);
    let holders: Vec<usize> =
        sim.true_nearest(&target, 5).iter().map(|id| (0..1000).find(|&i| sim.peers[i].uid() == *id).unwrap()).collect();
    let old = sign::sign(&secret, public, key, [1; 32], 100);
    let now = sim.now;
    let addr = sim.contact(0).addr;
    for &h in &holders {
        assert_eq!(
            sim.peers[h].handle_request(now, addr, [1; 32], Request::NamespaceSet { record: old, lifetime: None }),
            Reply::Bool(false)
        );
        // A forged signature, and a record under another public key, are refused too.
        let mut forged = sign::sign(&secret, public, key, [3; 32], u64::MAX - 1);
        forged.value = [4; 32];
        assert_eq!(
            sim.peers[h].handle_request(now, addr, [1; 32], Request::NamespaceSet { record: forged, lifetime: None }),
            Reply::Bool(false)
        );
        let (_, other_pk) = sign::keypair(&mut rand::rngs::OsRng);
        let mut wrong_pk = sign::sign(&secret, public, key, [5; 32], u64::MAX - 1);
        wrong_pk.public_key = other_pk;
        assert_eq!(
            sim.peers[h].handle_request(now, addr, [1; 32], Request::NamespaceSet { record: wrong_pk, lifetime: None }),
            Reply::Bool(false)
        );
    }
    assert_eq!(get(&mut sim, 903), Some(([2; 32], s2)));

    // Hostile holders answer with a forged newer record and with a replayed older one:
    // readers verify every reply, drop the bad ones, and keep the highest valid seq.
    let h0 = holders[0];
    let h1 = holders[1];
    sim.tamper = Some(Box::new(move |peer, req, reply| match req {
        Request::NamespaceRef { .. } if peer == h0 => {
            Reply::Namespace { value: [6; 32], signature: [9; 64], seq: u64::MAX - 1 }
        }
        Request::NamespaceRef { .. } if peer == h1 => {
            Reply::Namespace { value: old.value, signature: old.signature, seq: old.seq }
        }
        _ => reply,
    }));
    for from in [10, 20, 30, 40] {
        assert_eq!(get(&mut sim, from), Some(([2; 32], s2)));
    }
    sim.tamper = None;

    // Two writers racing: both finish, every reader then sees the same record.
    let a = sim.start(100, Op::NamespaceSet { secret, public_key: public, key, value: [10; 32], seq_floor: 1_000_000 });
    let b = sim.start(200, Op::NamespaceSet { secret, public_key: public, key, value: [11; 32], seq_floor: 1_000_000 });
    let (ra, rb) = (sim.run_until(a), sim.run_until(b));
    assert!(matches!(ra, OpResult::Signature(_) | OpResult::Failed(_)), "{ra:?}");
    assert!(matches!(rb, OpResult::Signature(_) | OpResult::Failed(_)), "{rb:?}");
    let seen: Vec<_> = (0..20).map(|_| get(&mut sim, rng.gen_range(0..1000))).collect();
    assert!(seen.iter().all(|r| *r == seen[0]), "readers disagree after a race: {seen:?}");
    assert!(matches!(seen[0], Some((v, _)) if v == [10; 32] || v == [11; 32]));
}

#[test]
fn a_value_that_does_not_hash_to_its_key_is_discarded() {
    let mut sim = network(200, 61);
    let value = b"the real value".to_vec();
    let key = match sim.run(5, Op::Set { value: value.clone().into() }) {
        OpResult::Key(k) => k,
        other => panic!("{other:?}"),
    };
    // Every peer that is asked for the key answers a forged value first.
    let liars: Vec<usize> = (0..200).filter(|i| i % 2 == 0).collect();
    sim.tamper = Some(Box::new(move |peer, req, reply| match req {
        Request::Ref { .. } if liars.contains(&peer) => Reply::Value(b"forged"[..].into()),
        _ => reply,
    }));
    for from in [1, 3, 7, 9, 11] {
        assert_eq!(sim.run(from, Op::Ref { key }), OpResult::Value(Some(value.clone().into())));
    }
}
