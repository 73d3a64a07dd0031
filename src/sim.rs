//! A simulated network: many protocol cores in one process on a virtual clock, messages
//! delivered through an event queue with a fixed latency. No sockets, no threads, no clock
//! reads, so a run is a pure function of its seed. Tests and the benchmark drive it.

use crate::consts::DEFAULT_REPLICATION;
use crate::core::{Core, CoreConfig, Op, OpResult};
use crate::id::{Contact, Id};
use crate::store::MemStore;
use crate::wire::{Reply, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// One-way delivery time of every simulated message.
pub const LATENCY_US: u64 = 100;
/// Events one `run_until` call processes at most, so a bug cannot loop forever.
const MAX_EVENTS_PER_RUN: usize = 50_000_000;

enum Event {
    Request { from: usize, to: usize, token: u64, request: Request },
    Reply { to: usize, token: u64, reply: Option<(Reply, [u8; 32])> },
    Timer { peer: usize },
}

/// Rewrites what peer `i` answers to a request: `(i, request, honest reply) -> reply sent`.
pub type Tamper = Box<dyn FnMut(usize, &Request, Reply) -> Reply>;

pub struct Sim {
    pub peers: Vec<Core>,
    addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    stopped: Vec<bool>,
    timer_at: Vec<u64>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    pub now: u64,
    next_client: u64,
    results: HashMap<u64, OpResult>,
    /// Messages delivered (requests and replies), for messages-per-lookup figures.
    pub messages: u64,
    rng: StdRng,
    /// Rewrites the replies of chosen peers, to play hostile peers: (peer, request, reply).
    pub tamper: Option<Tamper>,
}

/// The simulated address of peer `i`: 127.x.y.z:7000 (loopback, never dialled).
fn sim_addr(i: usize) -> SocketAddr {
    let n = i as u32 + 1;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8)), 7000)
}

fn sim_static(id: &Id) -> [u8; 32] {
    // A stand-in for a Noise key: distinct per peer and stable.
    Id::hash(&id.0).0
}

impl Sim {
    pub fn new(n: usize, seed: u64) -> Sim {
        Sim::with_replication(n, seed, DEFAULT_REPLICATION)
    }

    pub fn with_replication(n: usize, seed: u64, replication: u32) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut peers = Vec::with_capacity(n);
        let mut addrs = Vec::with_capacity(n);
        let mut by_addr = HashMap::with_capacity(n);
        for i in 0..n {
            let uid = Id::random(&mut rng);
            let cfg = CoreConfig::new(uid, replication, Some(7000), sim_static(&uid), rng.gen());
            peers.push(Core::new(cfg, Box::new(MemStore::new(uid)), 0));
            addrs.push(sim_addr(i));
            by_addr.insert(sim_addr(i), i);
        }
        Sim {
            peers,
            addrs,
            by_addr,
            stopped: vec![false; n],
            timer_at: vec![u64::MAX; n],
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            now: 0,
            next_client: 0,
            results: HashMap::new(),
            messages: 0,
            rng,
            tamper: None,
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn contact(&self, i: usize) -> Contact {
        let id = self.peers[i].uid();
        Contact { id, addr: self.addrs[i], static_key: sim_static(&id) }
    }

    /// Stop a peer abruptly: requests to it fail from now on.
    pub fn stop(&mut self, i: usize) {
        self.stopped[i] = true;
    }

    pub fn is_stopped(&self, i: usize) -> bool {
        self.stopped[i]
    }

    /// Fill every routing table without messages: each peer learns `far` random peers and
    /// its `near` nearest (what a finished bootstrap leaves), for very large simulations.
    pub fn fill_tables(&mut self, far: usize, near: usize) {
        let n = self.len();
        let mut sorted: Vec<(Id, usize)> = (0..n).map(|i| (self.peers[i].uid(), i)).collect();
        sorted.sort();
        for i in 0..n {
            for _ in 0..far {
                let j = self.rng.gen_range(0..n);
                if j != i {
                    let c = self.contact(j);
                    self.peers[i].add_contact(c, 0);
                }
            }
            // Nearest by XOR are found among neighbours in sorted order (shared prefixes).
            let pos = sorted.binary_search(&(self.peers[i].uid(), i)).expect("present");
            let lo = pos.saturating_sub(near);
            let hi = (pos + near + 1).min(n);
            for &(_, j) in &sorted[lo..hi] {
                if j != i {
                    let c = self.contact(j);
                    self.peers[i].add_contact(c, 0);
                }
            }
            // Pings the tables asked for are dropped: every simulated peer is alive.
            while self.peers[i].poll_transmit().is_some() {}
        }
    }

    /// Start `op` at peer `i`; returns a ticket for `result`.
    pub fn start(&mut self, i: usize, op: Op) -> u64 {
        self.next_client += 1;
        let client = self.next_client;
        self.peers[i].start(self.now, client, op);
        self.pump(i);
        client
    }

    /// Run events until `client`'s op has finished; its result.
    pub fn run(&mut self, i: usize, op: Op) -> OpResult {
        let c = self.start(i, op);
        self.run_until(c)
    }

    pub fn run_until(&mut self, client: u64) -> OpResult {
        for _ in 0..MAX_EVENTS_PER_RUN {
            if let Some(r) = self.results.remove(&client) {
                return r;
            }
            if !self.step() {
                break;
            }
        }
        self.results
            .remove(&client)
            .unwrap_or(OpResult::Failed(crate::error::Error::Internal("simulation stalled".into())))
    }

    /// Run until nothing is left to do (or the event budget is spent).
    pub fn run_idle(&mut self, max_time_us: u64) {
        let end = self.now + max_time_us;
        for _ in 0..MAX_EVENTS_PER_RUN {
            match self.queue.peek() {
                Some(Reverse((t, _))) if *t <= end => {
                    self.step();
                }
                _ => break,
            }
        }
    }

    /// Let virtual time pass up to `now + us`, firing whatever falls due.
    pub fn advance(&mut self, us: u64) {
        let end = self.now + us;
        self.run_idle(us);
        self.now = self.now.max(end);
    }

    /// Connect every peer to peer 0 and bootstrap them one after another.
    pub fn bootstrap_all(&mut self) {
        for i in 1..self.len() {
            let addr = self.addrs[0];
            self.run(i, Op::Connect { addr });
            self.run(i, Op::Bootstrap);
        }
    }

    /// The true `n` nearest live peers to `target`, by brute force.
    pub fn true_nearest(&self, target: &Id, n: usize) -> Vec<Id> {
        let mut ids: Vec<Id> = (0..self.len()).filter(|&i| !self.stopped[i]).map(|i| self.peers[i].uid()).collect();
        ids.sort_by_key(|id| id.distance(target));
        ids.truncate(n);
        ids
    }

    fn schedule(&mut self, at: u64, e: Event) {
        self.seq += 1;
        self.events.insert(self.seq, e);
        self.queue.push(Reverse((at, self.seq)));
    }

    /// Process the next event; false when none is left.
    fn step(&mut self) -> bool {
        let Some(Reverse((t, seq))) = self.queue.pop() else { return false };
        self.now = self.now.max(t);
        let Some(e) = self.events.remove(&seq) else { return true };
        match e {
            Event::Request { from, to, token, request } => {
                self.messages += 1;
                if self.stopped[to] {
                    // A stopped peer's port refuses the connection at once.
                    self.schedule(self.now + LATENCY_US, Event::Reply { to: from, token, reply: None });
                } else {
                    let key = sim_static(&self.peers[from].uid());
                    let seen = self.tamper.as_ref().map(|_| request.clone());
                    let mut reply = self.peers[to].handle_request(self.now, self.addrs[from], key, request);
                    if let (Some(t), Some(req)) = (self.tamper.as_mut(), seen) {
                        reply = t(to, &req, reply);
                    }
                    let remote = sim_static(&self.peers[to].uid());
                    self.pump(to);
                    self.schedule(
                        self.now + LATENCY_US,
                        Event::Reply { to: from, token, reply: Some((reply, remote)) },
                    );
                }
            }
            Event::Reply { to, token, reply } => {
                self.messages += 1;
                if !self.stopped[to] {
                    self.peers[to].handle_reply(self.now, token, reply);
                    self.pump(to);
                }
            }
            Event::Timer { peer } => {
                self.timer_at[peer] = u64::MAX;
                if !self.stopped[peer] {
                    self.peers[peer].handle_timeout(self.now);
                    self.pump(peer);
                }
            }
        }
        true
    }

    /// Move what peer `i` wants sent into the queue and collect its finished ops.
    fn pump(&mut self, i: usize) {
        while let Some(t) = self.peers[i].poll_transmit() {
            match self.by_addr.get(&t.to) {
                Some(&to) => self.schedule(
                    self.now + LATENCY_US,
                    Event::Request { from: i, to, token: t.token, request: t.request },
                ),
                None => self.schedule(self.now + LATENCY_US, Event::Reply { to: i, token: t.token, reply: None }),
            }
        }
        while let Some((client, r)) = self.peers[i].poll_event() {
            self.results.insert(client, r);
        }
        if let Some(t) = self.peers[i].next_timeout() {
            let t = t.max(self.now + 1);
            if t < self.timer_at[i] {
                self.timer_at[i] = t;
                self.schedule(t, Event::Timer { peer: i });
            }
        }
    }
}
