//! The attacked network: honest peers (real `Node`s on the built-in transport) spread over
//! several /24s of loopback, the attacker alone in its own /24, a target key and the victim
//! (the honest peer nearest to it), and ids near the target for the attacks that aim there.
//!
//! Every node runs in this process; Linux routes all of 127.0.0.0/8 to loopback, so each
//! address works without setup.

use crate::id::Id;
use crate::node::{Node, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::net::{IpAddr, Ipv4Addr};

/// Honest peers per /24 in the spread layout (24 peers: 127.0.1.x to 127.0.4.x).
pub const PEERS_PER_PREFIX: usize = 6;
/// Leading bits a near-key value shares with the target: the attacked peers (and Sybils,
/// and fake contacts) are then the nearest to it.
pub const NEAR_BITS: usize = 12;
/// Leading bits Sybil and fake uids share with the target: nearer to every near-key value
/// than any honest peer (24 random uids share about 5 bits with any key).
pub const SYBIL_BITS: usize = 24;

/// The options every honest peer is made with: the one place to switch on the defences'
/// strict settings (address limits) once they exist.
pub fn honest_options() -> Options {
    // Loopback counted: the testnet spreads honest peers over 127.0.1-4.x and the attacker
    // over 127.0.9.x, as per-address and per-prefix limits see the internet.
    Options { diversity: crate::diversity::Diversity::strict(), ..Options::default() }
}

/// Where honest peers listen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    /// Peer i on 127.0.(1 + i / 6).(10 + i % 6): several per /24, over several /24s, as
    /// per-address and per-prefix limits see the internet.
    Spread,
    /// Every peer on 127.0.0.1 (the layout of the earlier tests, for comparison).
    OneAddress,
}

impl Layout {
    pub fn ip(self, i: usize) -> IpAddr {
        match self {
            Layout::Spread => {
                IpAddr::V4(Ipv4Addr::new(127, 0, 1 + (i / PEERS_PER_PREFIX) as u8, 10 + (i % PEERS_PER_PREFIX) as u8))
            }
            Layout::OneAddress => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// The attacker's `n`th address, all in 127.0.9.0/24.
pub fn attacker_ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 9, n))
}

/// The address measuring clients use (not an attacker, not a peer: its own /24).
pub fn observer_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 8, 1))
}

/// An id sharing at least `bits` leading bits with `target`, the rest random.
pub fn near_id(target: &Id, bits: usize, rng: &mut impl Rng) -> Id {
    let mut out = Id::random(rng).0;
    for bit in 0..bits.min(256) {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        out[byte] = (out[byte] & !mask) | (target.0[byte] & mask);
    }
    Id(out)
}

/// A random value of `len` bytes (at least 8) whose key shares `NEAR_BITS` leading bits with
/// `target`: found by trying counters in its last 8 bytes (about 4,000 hashes).
pub fn near_value(target: &Id, len: usize, rng: &mut impl Rng) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len.max(8)).map(|_| rng.gen()).collect();
    let at = v.len() - 8;
    for c in 0u64.. {
        v[at..].copy_from_slice(&c.to_le_bytes());
        if Id::hash(&v).common_prefix(target).is_none_or(|p| p >= NEAR_BITS) {
            break;
        }
    }
    v
}

/// A running honest network.
pub struct Testnet {
    pub peers: Vec<Node>,
    pub layout: Layout,
    /// The key the targeted attacks aim at.
    pub target: Id,
    /// Index in `peers` of the honest peer nearest to `target`.
    pub victim: usize,
}

impl Testnet {
    /// `n` honest peers made with `options`, uids and target from `seed`; each joins through
    /// the first and bootstraps.
    pub fn start(n: usize, layout: Layout, seed: u64, options: &Options) -> io::Result<Testnet> {
        let mut rng = StdRng::seed_from_u64(seed);
        let target = Id::random(&mut rng);
        let mut peers = Vec::with_capacity(n);
        for i in 0..n {
            let node = Node::with_options(Some(Id::random(&mut rng)), layout.ip(i), 0, options).map_err(io_err)?;
            peers.push(node);
        }
        let first = peers.first().map(|p| p.addr()).ok_or_else(|| io_err("no peers"))?;
        for p in peers.iter().skip(1) {
            p.connect(first.ip(), first.port()).map_err(io_err)?;
            p.bootstrap().map_err(io_err)?;
        }
        // A second round, so the first peers also learn of the later ones.
        for p in &peers {
            p.bootstrap().map_err(io_err)?;
        }
        let victim = (0..n).min_by_key(|&i| peers[i].uid().distance(&target)).unwrap_or(0);
        Ok(Testnet { peers, layout, target, victim })
    }

    pub fn victim(&self) -> &Node {
        &self.peers[self.victim]
    }

    /// Contacts in all routing tables together (n * (n - 1) when everyone knows everyone).
    pub fn contacts(&self) -> usize {
        self.peers.iter().filter_map(|p| p.stats().ok()).map(|s| s.contacts).sum()
    }

    /// Honest peers other than the victim: where the honest workload starts its operations.
    pub fn others(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.peers.iter().enumerate().filter(move |(i, _)| *i != self.victim)
    }
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The process's resident memory, in bytes (VmRSS of /proc/self/status): every node of the
/// testnet runs in this process, so its growth during an attack is the victims' growth.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
