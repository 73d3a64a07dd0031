//! A simulated network: many protocol cores in one process on a virtual clock, messages
//! delivered through an event queue with a fixed latency. No sockets, no threads, no clock
//! reads, so a run is a pure function of its seed. Tests and the benchmark drive it.

use crate::consts::{DEFAULT_REPLICATION, RECORD_LIFETIME_US, REPUBLISH_US};
use crate::core::{Core, CoreConfig, Op, OpResult, RequestKind};
use crate::id::{Contact, Id};
use crate::store::{Limits, MemStore};
use crate::wire::codec::{encode_reply, encode_request};
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
    Request {
        from: usize,
        to: usize,
        token: u64,
        request: Request,
    },
    /// `kind`: of the request answered (`kind_of`), to count the reply with it.
    Reply {
        to: usize,
        token: u64,
        kind: usize,
        reply: Option<(Reply, [u8; 32])>,
    },
    /// `at`: when it was set for; a timer replaced by an earlier one is stale.
    Timer {
        peer: usize,
        at: u64,
    },
}

/// The index of `r`'s kind in `Traffic`'s arrays (`RequestKind::ALL` order).
fn kind_of(r: &Request) -> usize {
    RequestKind::of(r).index()
}

/// Delivered messages by the kind of request they are or answer (`RequestKind::ALL` order):
/// requests and replies, and their encoded bytes when `Sim::count_bytes` is on (the datum
/// text the wire carries, without framing and encryption).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub messages: [u64; 8],
    pub bytes: [u64; 8],
}

impl Traffic {
    pub fn total_messages(&self) -> u64 {
        self.messages.iter().sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().sum()
    }

    /// What was delivered since `earlier`.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        let mut d = *self;
        for k in 0..RequestKind::ALL.len() {
            d.messages[k] -= earlier.messages[k];
            d.bytes[k] -= earlier.bytes[k];
        }
        d
    }
}

/// How every simulated peer is configured (those of the start and those `add_peer` adds).
#[derive(Clone, Copy, Debug)]
pub struct PeerConfig {
    pub replication: u32,
    pub lifetime_us: u64,
    pub republish_us: u64,
    /// Benchmark only: holders re-store every interval even when refreshed (`CoreConfig`).
    pub restore_always: bool,
    /// The bounds of every peer's store.
    pub limits: Limits,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            replication: DEFAULT_REPLICATION,
            lifetime_us: RECORD_LIFETIME_US,
            republish_us: REPUBLISH_US,
            restore_always: false,
            limits: Limits::default(),
        }
    }
}

/// Rewrites what peer `i` answers to a request: `(i, request, honest reply) -> reply sent`.
pub type Tamper = Box<dyn FnMut(usize, &Request, Reply) -> Reply>;

pub struct Sim {
    /// Every peer ever started, stopped ones included (indexes never move).
    pub peers: Vec<Core>,
    config: PeerConfig,
    addrs: Vec<SocketAddr>,
    stopped: Vec<bool>,
    timer_at: Vec<u64>,
    /// (time, sequence number, slot in `events`): the sequence number keeps events of the
    /// same time in the order they were scheduled.
    queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// The events waiting, in reused slots (cheaper than a map keyed by sequence number).
    events: Vec<Option<Event>>,
    free: Vec<u32>,
    seq: u64,
    pub now: u64,
    next_client: u64,
    results: HashMap<u64, OpResult>,
    /// Messages delivered (requests and replies), for messages-per-lookup figures.
    pub messages: u64,
    /// The same by kind of request, with bytes when `count_bytes` is on.
    pub traffic: Traffic,
    /// Encode every delivered message to count its bytes (off by default: it costs time).
    pub count_bytes: bool,
    buf: Vec<u8>,
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
        Sim::with_peer_config(n, seed, PeerConfig { replication, ..PeerConfig::default() })
    }

    /// Peers whose records live `lifetime_us` and are republished every `republish_us`.
    pub fn with_config(n: usize, seed: u64, replication: u32, lifetime_us: u64, republish_us: u64) -> Sim {
        Sim::with_peer_config(n, seed, PeerConfig { replication, lifetime_us, republish_us, ..PeerConfig::default() })
    }

    pub fn with_peer_config(n: usize, seed: u64, config: PeerConfig) -> Sim {
        let mut sim = Sim {
            peers: Vec::with_capacity(n),
            config,
            addrs: Vec::with_capacity(n),
            stopped: Vec::with_capacity(n),
            timer_at: Vec::with_capacity(n),
            queue: BinaryHeap::new(),
            events: Vec::new(),
            free: Vec::new(),
            seq: 0,
            now: 0,
            next_client: 0,
            results: HashMap::new(),
            messages: 0,
            traffic: Traffic::default(),
            count_bytes: false,
            buf: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            tamper: None,
        };
        for _ in 0..n {
            sim.new_peer();
        }
        sim
    }

    /// Start a peer with a fresh random uid at the current time, knowing nobody yet.
    fn new_peer(&mut self) -> usize {
        let i = self.peers.len();
        let uid = Id::random(&mut self.rng);
        let c = &self.config;
        let mut cfg = CoreConfig::new(uid, c.replication, Some(7000), sim_static(&uid), self.rng.gen());
        cfg.lifetime_us = c.lifetime_us;
        cfg.republish_us = c.republish_us;
        cfg.restore_always = c.restore_always;
        self.peers.push(Core::new(cfg, Box::new(MemStore::with_limits(uid, c.limits)), self.now));
        self.addrs.push(sim_addr(i));
        self.stopped.push(false);
        self.timer_at.push(u64::MAX);
        i
    }

    /// A fresh peer joins the running network as real peers do: it connects to a random
    /// live peer and bootstraps. Returns its index.
    pub fn add_peer(&mut self) -> usize {
        let live = self.live();
        let i = self.new_peer();
        if let Some(&via) = live.get(self.rng.gen_range(0..live.len().max(1))) {
            let addr = self.addrs[via];
            self.run(i, Op::Connect { addr });
            self.run(i, Op::Bootstrap);
        }
        i
    }

    /// The indexes of the peers not stopped.
    pub fn live(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| !self.stopped[i]).collect()
    }

    /// How the peers are configured.
    pub fn config(&self) -> &PeerConfig {
        &self.config
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
                Some(Reverse((t, _, _))) if *t <= end => {
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
        let slot = match self.free.pop() {
            Some(f) => {
                self.events[f as usize] = Some(e);
                f
            }
            None => {
                self.events.push(Some(e));
                (self.events.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    /// Process the next event; false when none is left.
    fn step(&mut self) -> bool {
        let Some(Reverse((t, _, slot))) = self.queue.pop() else { return false };
        self.now = self.now.max(t);
        let e = self.events[slot as usize].take().expect("a queued event");
        self.free.push(slot);
        match e {
            Event::Request { from, to, token, request } => {
                self.messages += 1;
                let kind = kind_of(&request);
                if self.stopped[to] {
                    // A stopped peer's port refuses the connection at once (no `traffic`:
                    // nothing crossed the wire).
                    self.schedule(self.now + LATENCY_US, Event::Reply { to: from, token, kind, reply: None });
                } else {
                    self.traffic.messages[kind] += 1;
                    if self.count_bytes {
                        self.buf.clear();
                        encode_request(&request, &mut self.buf);
                        self.traffic.bytes[kind] += self.buf.len() as u64;
                    }
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
                        Event::Reply { to: from, token, kind, reply: Some((reply, remote)) },
                    );
                }
            }
            Event::Reply { to, token, kind, reply } => {
                self.messages += 1;
                if let Some((r, _)) = &reply {
                    self.traffic.messages[kind] += 1;
                    if self.count_bytes {
                        self.buf.clear();
                        encode_reply(r, &mut self.buf);
                        self.traffic.bytes[kind] += self.buf.len() as u64;
                    }
                }
                if !self.stopped[to] {
                    self.peers[to].handle_reply(self.now, token, reply);
                    self.pump(to);
                }
            }
            Event::Timer { peer, at } => {
                // Only the latest timer of a peer counts: an older one firing would set off
                // another round of timers each time, and they would multiply.
                if at != self.timer_at[peer] {
                    return true;
                }
                self.timer_at[peer] = u64::MAX;
                if !self.stopped[peer] {
                    self.peers[peer].handle_timeout(self.now);
                    self.pump(peer);
                }
            }
        }
        true
    }

    /// The peer at `addr` (`sim_addr` read backwards), if there is one.
    fn index_of(&self, addr: &SocketAddr) -> Option<usize> {
        let SocketAddr::V4(a) = addr else { return None };
        let [_, x, y, z] = a.ip().octets();
        let i = (((x as usize) << 16) | ((y as usize) << 8) | z as usize).checked_sub(1)?;
        (i < self.len() && sim_addr(i) == *addr).then_some(i)
    }

    /// Move what peer `i` wants sent into the queue and collect its finished ops.
    fn pump(&mut self, i: usize) {
        while let Some(t) = self.peers[i].poll_transmit() {
            match self.index_of(&t.to) {
                Some(to) => self.schedule(
                    self.now + LATENCY_US,
                    Event::Request { from: i, to, token: t.token, request: t.request },
                ),
                None => {
                    let kind = kind_of(&t.request);
                    self.schedule(self.now + LATENCY_US, Event::Reply { to: i, token: t.token, kind, reply: None })
                }
            }
        }
        while let Some((client, r)) = self.peers[i].poll_event() {
            self.results.insert(client, r);
        }
        if let Some(t) = self.peers[i].next_timeout() {
            let t = t.max(self.now + 1);
            if t < self.timer_at[i] {
                self.timer_at[i] = t;
                self.schedule(t, Event::Timer { peer: i, at: t });
            }
        }
    }
}
