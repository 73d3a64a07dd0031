//! A thousand peers in one process share a few event-loop threads (`node::pool`): they start,
//! answer each other, store and find values, and close, while the process's thread count
//! stays about one per core.

use peer::{Id, Node};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

const PEERS: usize = 1000;
/// Sets (from peers spread over the ring), each then read back by its setter and a neighbour.
const SETS: usize = 5;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The process's threads (Threads: in /proc/self/status).
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find_map(|l| l.strip_prefix("Threads:")).expect("a Threads line");
    line.trim().parse().expect("a number")
}

/// 1,000 listeners and their connections need more descriptors than a default soft limit.
fn raise_nofile(want: u64) {
    // SAFETY: get/setrlimit read and write one struct rlimit we own.
    let cur = unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur as u64
    };
    assert!(cur >= want, "this test needs {want} descriptors; the hard limit is {cur}");
}

#[test]
fn a_thousand_peers_share_a_few_threads() {
    raise_nofile(8192);
    let started = Instant::now();
    let before = threads();
    let peers: Vec<Node> = (0..PEERS)
        .map(|i| {
            let mut uid = [0u8; 32];
            uid[..8].copy_from_slice(&(i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            Node::new(Id(uid), LOCALHOST, 0, 5).expect("a peer")
        })
        .collect();
    let loops = std::thread::available_parallelism().map_or(1, |n| n.get());
    let grown = threads() - before;
    assert!(grown <= loops, "{PEERS} peers made {grown} threads; the pool has {loops}");

    // A ring: each peer introduces itself to the next.
    for (i, p) in peers.iter().enumerate() {
        let next = &peers[(i + 1) % PEERS];
        p.connect(LOCALHOST, next.port()).unwrap_or_else(|e| panic!("peer {i} connects: {e}"));
    }
    for k in 0..SETS {
        let i = k * PEERS / SETS;
        let value = format!("value {k} from peer {i}").into_bytes();
        let key = peers[i].set(&value).unwrap_or_else(|e| panic!("set from peer {i}: {e}"));
        assert_eq!(key, Id::hash(&value));
        for j in [i, (i + 1) % PEERS] {
            let got = peers[j].get(&key).unwrap_or_else(|e| panic!("ref from peer {j}: {e}"));
            assert_eq!(got.as_deref(), Some(&value[..]), "peer {j} finds the value peer {i} stored");
        }
    }
    assert!(threads() - before <= loops, "the pool grew while serving");
    for (i, p) in peers.iter().enumerate() {
        let s = p.stats().unwrap_or_else(|e| panic!("stats of peer {i}: {e}"));
        assert!(s.contacts >= 1, "peer {i} knows its ring neighbours");
    }
    // Closing waits for each peer to stop: its port is free again at once.
    let port = peers[0].port();
    drop(peers);
    let again = Node::new(Id([7; 32]), LOCALHOST, port, 5).expect("the port of a closed peer is free");
    again.close();
    eprintln!("{PEERS} peers started, ringed, used and closed in {:?}", started.elapsed());
}
