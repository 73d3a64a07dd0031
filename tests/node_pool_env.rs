//! `LIBPEER_LOOP_THREADS` sets how many event-loop threads the process's peers share (a file
//! of its own: the variable is read once per process, when the first peer starts).

use peer::{Id, Node};
use std::net::{IpAddr, Ipv4Addr};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find_map(|l| l.strip_prefix("Threads:")).expect("a Threads line");
    line.trim().parse().expect("a number")
}

#[test]
fn one_loop_thread_when_asked() {
    std::env::set_var("LIBPEER_LOOP_THREADS", "1");
    let before = threads();
    let peers: Vec<Node> = (0..20u8).map(|i| Node::new(Id([i + 1; 32]), LOCALHOST, 0, 5).expect("a peer")).collect();
    assert_eq!(threads(), before + 1, "20 peers on one loop thread");
    for (i, p) in peers.iter().enumerate() {
        p.connect(LOCALHOST, peers[(i + 1) % peers.len()].port()).expect("connect");
    }
    let key = peers[3].set(b"one thread serves them all").expect("set");
    assert_eq!(peers[4].get(&key).expect("ref").as_deref(), Some(&b"one thread serves them all"[..]));
}
