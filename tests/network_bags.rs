//! Bags and namespaces over real sockets: 50 peers on loopback, every call of the Rust API,
//! with the latency of each printed for the record.

use peer::{sign, BagKind, Error, Id, Node};
use rand::{Rng, SeedableRng};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Timer(Vec<(&'static str, Vec<f64>)>);

impl Timer {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(ms),
            None => self.0.push((name, vec![ms])),
        }
        r
    }
    fn print(&mut self) {
        for (name, v) in &mut self.0 {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("{name:<22} n={:<3} p50 {:.3} ms  max {:.3} ms", v.len(), v[v.len() / 2], v[v.len() - 1]);
        }
    }
}

#[test]
fn bags_and_namespaces_on_fifty_peers() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(70);
    let nodes: Vec<Node> = (0..50).map(|_| Node::new(Id::random(&mut rng), LOOPBACK, 0, 5).unwrap()).collect();
    for n in &nodes[1..] {
        n.connect(LOOPBACK, nodes[0].port()).unwrap();
        n.bootstrap().unwrap();
    }
    let mut t = Timer(Vec::new());
    let key = Id::random(&mut rng);
    // Value v is published by v+1 different peers.
    for v in 0..5u8 {
        for p in 0..=v as usize {
            t.time("bag_publish", || nodes[p * 7 + 1].bag_publish(&key, &[v; 32])).unwrap();
        }
    }
    for i in 0..10 {
        let from = 20 + i;
        let popular = t.time("bag_popular", || nodes[from].bag_query(BagKind::Popular, &key, 20)).unwrap();
        assert_eq!(popular, (0..5u8).rev().map(|v| [v; 32]).collect::<Vec<_>>());
        let recent = t.time("bag_recent", || nodes[from].bag_query(BagKind::Recent, &key, 2)).unwrap();
        assert_eq!(recent, vec![[4; 32], [3; 32]]);
        let mut sample = t.time("bag_sample", || nodes[from].bag_query(BagKind::Sample, &key, 20)).unwrap();
        sample.sort();
        assert_eq!(sample, (0..5u8).map(|v| [v; 32]).collect::<Vec<_>>());
    }
    // The `_at` calls ask one peer: one that holds the bag answers it all, another nothing.
    let holders: Vec<&Node> =
        nodes.iter().filter(|n| !n.bag_query_at(&n.uid(), BagKind::Popular, &key, 20).unwrap().is_empty()).collect();
    assert!(holders.len() >= 5, "{} peers hold the bag", holders.len());
    let h = holders[0].uid();
    for from in [2, 9, 33] {
        let got = t.time("bag_popular_at", || nodes[from].bag_query_at(&h, BagKind::Popular, &key, 20)).unwrap();
        assert_eq!(got.len(), 5);
        t.time("bag_recent_at", || nodes[from].bag_query_at(&h, BagKind::Recent, &key, 20)).unwrap();
        t.time("bag_sample_at", || nodes[from].bag_query_at(&h, BagKind::Sample, &key, 20)).unwrap();
    }
    let unknown = Id::random(&mut rng);
    assert!(matches!(nodes[3].bag_query_at(&unknown, BagKind::Popular, &key, 20), Err(Error::Unreachable(_))));

    let (secret, public) = sign::keypair(&mut rand::rngs::OsRng);
    let mut last = None;
    for i in 0..10u8 {
        let from = rng.gen_range(0..50);
        let sig = t.time("namespace_set", || nodes[from].namespace_set(&secret, &public, &[1; 32], &[i; 32])).unwrap();
        let reader = (from + 1 + rng.gen_range(0..48)) % 50;
        let got = t.time("namespace_ref", || nodes[reader].namespace_ref(&public, &[1; 32], None)).unwrap();
        assert_eq!(got, Some(([i; 32], sig)));
        let pinned =
            t.time("namespace_ref_pinned", || nodes[reader].namespace_ref(&public, &[1; 32], Some(&sig))).unwrap();
        assert_eq!(pinned, Some(([i; 32], sig)));
        last = Some(sig);
    }
    let holder = nodes
        .iter()
        .find(|n| n.namespace_ref_at(&n.uid(), &public, &[1; 32], None).unwrap().is_some())
        .expect("a holder")
        .uid();
    let got = t.time("namespace_ref_at", || nodes[4].namespace_ref_at(&holder, &public, &[1; 32], None)).unwrap();
    assert_eq!(got, Some(([9; 32], last.unwrap())));
    assert_eq!(nodes[5].namespace_ref(&public, &[2; 32], None).unwrap(), None);
    let (other_secret, _) = sign::keypair(&mut rand::rngs::OsRng);
    assert_eq!(nodes[5].namespace_set(&other_secret, &public, &[1; 32], &[0; 32]), Err(Error::KeyMismatch));
    assert!(matches!(nodes[6].namespace_ref_at(&unknown, &public, &[1; 32], None), Err(Error::Unreachable(_))));
    t.print();
    for n in &nodes {
        n.close();
    }
}
