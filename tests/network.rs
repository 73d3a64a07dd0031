//! Real sockets: peers on loopback over encrypted TCP, through the blocking Rust API.

use peer::{Error, Id, Node};
use rand::{Rng, SeedableRng};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn network(n: usize, rng: &mut impl Rng) -> Vec<Node> {
    let nodes: Vec<Node> = (0..n).map(|_| Node::new(Id::random(rng), LOOPBACK, 0, 5).expect("peer starts")).collect();
    let first = nodes[0].port();
    for node in &nodes[1..] {
        node.connect(LOOPBACK, first).expect("connect to the first peer");
        node.bootstrap().expect("bootstrap");
    }
    nodes
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3
}

#[test]
fn fifty_peers_set_and_ref_with_a_peer_stopped() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(50);
    let t0 = Instant::now();
    let mut nodes = network(50, &mut rng);
    println!("50 peers bootstrapped in {:.0} ms", t0.elapsed().as_secs_f64() * 1e3);
    let (mut set_t, mut ref_t) = (Vec::new(), Vec::new());
    let mut stored = Vec::new();
    for _ in 0..100 {
        let len = rng.gen_range(1..4000);
        let value: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let from = rng.gen_range(0..nodes.len());
        let t = Instant::now();
        let key = nodes[from].set(&value).expect("set");
        set_t.push(t.elapsed());
        assert_eq!(key, Id::hash(&value));
        stored.push((key, value, from));
    }
    for (key, value, from) in &stored {
        let mut to = rng.gen_range(0..nodes.len());
        if to == *from {
            to = (to + 1) % nodes.len();
        }
        let t = Instant::now();
        let got = nodes[to].get(key).expect("ref");
        ref_t.push(t.elapsed());
        assert_eq!(got.as_deref(), Some(&value[..]), "value read back from another peer");
    }
    println!(
        "set p50 {:.3} ms p99 {:.3} ms; ref p50 {:.3} ms p99 {:.3} ms",
        pct(&mut set_t, 0.5),
        pct(&mut set_t, 0.99),
        pct(&mut ref_t, 0.5),
        pct(&mut ref_t, 0.99)
    );
    // A key nobody stored: not found, promptly (every peer answers, so no timeout is waited out).
    let t = Instant::now();
    assert_eq!(nodes[7].get(&Id::random(&mut rng)).expect("ref"), None);
    let missing = t.elapsed();
    println!("missing key answered in {:.3} ms", missing.as_secs_f64() * 1e3);
    assert!(missing < Duration::from_secs(4), "not found must not wait for a request timeout");

    // Stop one peer abruptly; the rest keep working.
    let gone = nodes.remove(13);
    gone.close();
    assert_eq!(gone.get(&stored[0].0), Err(Error::Closed));
    let mut found = 0;
    for (key, value, _) in &stored {
        let to = rng.gen_range(0..nodes.len());
        if nodes[to].get(key).expect("ref after a stop").as_deref() == Some(&value[..]) {
            found += 1;
        }
    }
    println!("after stopping one peer: {found}/100 found");
    assert_eq!(found, 100);
    let key = nodes[3].set(b"after the stop").expect("set after a stop");
    assert_eq!(nodes[40].get(&key).unwrap().as_deref(), Some(&b"after the stop"[..]));
    for n in &nodes {
        n.close();
    }
}

#[test]
fn bad_arguments_are_errors_without_effect() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    assert!(matches!(Node::new(Id::random(&mut rng), LOOPBACK, 0, 4), Err(Error::Invalid(_))));
    assert!(matches!(Node::new(Id::random(&mut rng), LOOPBACK, 0, 21), Err(Error::Invalid(_))));
    let a = Node::new(Id::random(&mut rng), LOOPBACK, 0, 5).unwrap();
    let big = vec![0u8; peer::MAX_VALUE_SIZE + 1];
    assert_eq!(a.set(&big), Err(Error::TooLarge(big.len(), peer::MAX_VALUE_SIZE)));
    // Alone, a peer is the nearest peer to every key: it keeps its own value.
    let k = a.set(b"x").unwrap();
    assert_eq!(a.get(&k).unwrap().as_deref(), Some(&b"x"[..]));
    assert!(matches!(a.bootstrap(), Err(Error::Unreachable(_))));
    // Nobody listens on the port of a closed peer.
    let b = Node::new(Id::random(&mut rng), LOOPBACK, 0, 5).unwrap();
    let port = b.port();
    b.close();
    assert!(matches!(a.connect(LOOPBACK, port), Err(Error::Unreachable(_))));
    a.close();
    a.close();
}
