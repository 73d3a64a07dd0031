//! The simulator: every peer's core, its address, the clock and the events, the public API
//! the tests and the benchmark drive, and the fixed-latency mode's delivery. The WAN mode's
//! delivery is `transport`'s.

use super::agenda::{Agenda, Event, Trip};
use super::link::LinkStats;
use super::rtt::Coord;
use super::trace::Path;
use super::wan::{Wan, WanConfig};
use crate::consts::{DEFAULT_REPLICATION, RECORD_LIFETIME_US, REPUBLISH_US};
use crate::core::{Core, CoreConfig, Op, OpResult, RequestKind};
use crate::id::{Contact, Id};
use crate::store::{Limits, MemStore};
use crate::wire::codec::{encode_reply, encode_request};
use crate::wire::{Reply, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// One-way delivery time of every simulated message.
pub const LATENCY_US: u64 = 100;
/// Events one `run_until` call processes at most, so a bug cannot loop forever.
const MAX_EVENTS_PER_RUN: usize = 50_000_000;

/// The index of `r`'s kind in `Traffic`'s arrays (`RequestKind::ALL` order).
pub(super) fn kind_of(r: &Request) -> usize {
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
    pub(super) stopped: Vec<bool>,
    timer_at: Vec<u64>,
    pub(super) agenda: Agenda,
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
    /// The WAN mode's state; None in the fixed-latency mode.
    pub(super) wan: Option<Box<Wan>>,
}

/// The simulated address of peer `i`: 127.x.y.z:7000 (loopback, never dialled).
fn sim_addr(i: usize) -> SocketAddr {
    let n = i as u32 + 1;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8)), 7000)
}

pub(super) fn sim_static(id: &Id) -> [u8; 32] {
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
            agenda: Agenda::default(),
            now: 0,
            next_client: 0,
            results: HashMap::new(),
            messages: 0,
            traffic: Traffic::default(),
            count_bytes: false,
            buf: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            tamper: None,
            wan: None,
        };
        for _ in 0..n {
            sim.new_peer();
        }
        sim
    }

    /// The WAN mode: `n` peers configured by `config`, on the internet as `wan` models it.
    pub fn with_wan(n: usize, seed: u64, config: PeerConfig, wan: WanConfig) -> Sim {
        let mut sim = Sim::with_peer_config(0, seed, config);
        sim.wan = Some(Box::new(Wan::new(seed, wan)));
        // Peers start at even intervals over one maintenance period, as in a network that has
        // run a while: their sweeps (re-stores of what departed neighbours held) spread out
        // instead of all falling at once. The clock ends at the period.
        for i in 0..n {
            sim.new_peer();
            let period = sim.peers[0].sweep_period();
            sim.now = (i as u64 + 1) * period / n as u64;
        }
        sim
    }

    /// Whether this is the WAN mode.
    pub fn is_wan(&self) -> bool {
        self.wan.is_some()
    }

    /// The round-trip time between two peers (µs).
    pub fn rtt_us(&self, a: usize, b: usize) -> u64 {
        2 * self.wan.as_ref().map_or(LATENCY_US, |w| w.one_way(a, b))
    }

    /// Every peer's coordinates (WAN mode; empty otherwise).
    pub fn coords(&self) -> &[Coord] {
        self.wan.as_ref().map_or(&[], |w| &w.coords)
    }

    /// Put peer `i` at `c` (WAN mode), for tests that want chosen round-trip times.
    pub fn set_coord(&mut self, i: usize, c: Coord) {
        if let Some(w) = &mut self.wan {
            w.coords[i] = c;
        }
    }

    /// What the connections did so far (WAN mode).
    pub fn link_stats(&self) -> Option<LinkStats> {
        self.wan.as_ref().map(|w| w.links.stats)
    }

    /// Connections peer `i` dialed so far (WAN mode).
    pub fn dials(&self, i: usize) -> u64 {
        self.wan.as_ref().map_or(0, |w| w.links.dialed(i))
    }

    /// Connections peer `i` holds (dialed, accepted), whatever their state (WAN mode).
    pub fn connections(&self, i: usize) -> (usize, usize) {
        self.wan.as_ref().map_or((0, 0), |w| w.links.counts(i))
    }

    /// Trace the operations of peer `i` (WAN mode; one peer at a time): each finished
    /// operation's critical path is kept for `take_path`.
    pub fn trace(&mut self, i: Option<usize>) {
        if let Some(w) = &mut self.wan {
            w.trace.peer = i;
            w.paths.clear();
        }
    }

    /// The critical path of the traced peer's operation `client`, once finished.
    pub fn take_path(&mut self, client: u64) -> Option<Path> {
        self.wan.as_mut()?.paths.remove(&client)
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
        if let Some(w) = &mut self.wan {
            w.add_peer();
        }
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

    /// Stop a peer abruptly: requests to it fail from now on (at once in the fixed-latency
    /// mode, where its port refuses; at the request timeout in the WAN mode, where it is
    /// silent, as a host gone from the network is).
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
        if let Some(w) = self.wan.as_mut().filter(|w| w.trace.peer == Some(i)) {
            w.trace.begin(self.now);
        }
        self.peers[i].start(self.now, client, op);
        self.pump(i);
        client
    }

    /// Run events until `client`'s op has finished; its result.
    pub fn run(&mut self, i: usize, op: Op) -> OpResult {
        let c = self.start(i, op);
        self.run_until(c)
    }

    /// Peer `from` connects to peer `to` (`Op::Connect` to its address); the result.
    pub fn connect(&mut self, from: usize, to: usize) -> OpResult {
        let addr = self.contact(to).addr;
        self.run(from, Op::Connect { addr })
    }

    /// `run`, and the virtual time it took (µs).
    pub fn run_timed(&mut self, i: usize, op: Op) -> (u64, OpResult) {
        let t0 = self.now;
        let r = self.run(i, op);
        (self.now - t0, r)
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
            match self.agenda.next_time() {
                Some(t) if t <= end => {
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

    /// Schedule every live peer's next timeout: cores given contacts directly
    /// (`Core::add_contact`) have none scheduled until they first hear from someone.
    pub fn wake(&mut self) {
        for i in self.live() {
            self.pump(i);
        }
    }

    /// WAN mode: open a connection from every live peer to each of its routing contacts, as
    /// the transport keeps them (`net::policy`: within the caps, marked as contacts), without
    /// modelling their handshakes: a network whose peers connected to their contacts when
    /// they joined their tables and kept them. How many were opened.
    pub fn warm_contacts(&mut self) -> usize {
        if self.wan.is_none() {
            return 0;
        }
        let mut opened = 0;
        for a in self.live() {
            for c in self.peers[a].routing().contacts() {
                let Some(b) = self.index_of(&c.addr).filter(|&b| !self.stopped[b]) else { continue };
                let w = self.wan.as_mut().expect("WAN mode");
                opened += usize::from(w.links.warm(a, b, self.now));
            }
        }
        opened
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

    pub(super) fn schedule(&mut self, at: u64, e: Event) {
        self.agenda.schedule(at, e);
    }

    /// Process the next event; false when none is left.
    fn step(&mut self) -> bool {
        let Some((t, mut e, paid)) = self.agenda.pop() else { return false };
        self.now = self.now.max(t);
        if self.wan.is_none() {
            self.step_fixed(e);
            return true;
        }
        if !paid {
            // Its receiver's CPU first: it waits its turn, then takes its time.
            if let Some((peer, ns)) = self.cpu_cost(&e).filter(|&(p, ns)| ns > 0 && !self.stopped[p]) {
                let w = self.wan.as_mut().expect("WAN mode");
                let done = w.queue.run(peer, self.now, ns);
                e.add_cpu(done - self.now);
                if done > self.now {
                    self.agenda.schedule_paid(done, e, true);
                    return true;
                }
            }
        }
        self.step_wan(e);
        true
    }

    fn step_fixed(&mut self, e: Event) {
        match e {
            Event::Request { from, to, token, request, .. } => {
                self.messages += 1;
                let kind = kind_of(&request);
                if self.stopped[to] {
                    // A stopped peer's port refuses the connection at once (no `traffic`:
                    // nothing crossed the wire).
                    let reply = Event::Reply { to: from, from: to, token, kind, reply: None, trip: Trip::default() };
                    self.schedule(self.now + LATENCY_US, reply);
                } else {
                    let reply = self.answer(from, to, request);
                    self.pump(to);
                    let reply =
                        Event::Reply { to: from, from: to, token, kind, reply: Some(reply), trip: Trip::default() };
                    self.schedule(self.now + LATENCY_US, reply);
                }
            }
            Event::Reply { to, token, kind, reply, .. } => {
                self.messages += 1;
                if let Some((r, _)) = &reply {
                    self.count_reply(kind, r);
                }
                if !self.stopped[to] {
                    self.peers[to].handle_reply(self.now, token, reply);
                    self.pump(to);
                }
            }
            Event::Timer { peer, at } => self.timer(peer, at),
            Event::Connected { .. } | Event::Hello { .. } | Event::Confirm { .. } | Event::Closed { .. } => {
                unreachable!("WAN events only")
            }
        }
    }

    /// Peer `to` answers `request` from `from` (counted, tampered with if asked): the reply
    /// and `to`'s static key. The caller pumps `to` (in the WAN mode after sending the reply,
    /// as the TCP driver does).
    pub(super) fn answer(&mut self, from: usize, to: usize, request: Request) -> (Reply, [u8; 32]) {
        let kind = kind_of(&request);
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
        (reply, remote)
    }

    pub(super) fn count_reply(&mut self, kind: usize, r: &Reply) {
        self.traffic.messages[kind] += 1;
        if self.count_bytes {
            self.buf.clear();
            encode_reply(r, &mut self.buf);
            self.traffic.bytes[kind] += self.buf.len() as u64;
        }
    }

    pub(super) fn timer(&mut self, peer: usize, at: u64) {
        // Only the latest timer of a peer counts: an older one firing would set off
        // another round of timers each time, and they would multiply.
        if at != self.timer_at[peer] {
            return;
        }
        self.timer_at[peer] = u64::MAX;
        if !self.stopped[peer] {
            if let Some(w) = &mut self.wan {
                w.note(peer, self.now);
            }
            self.peers[peer].handle_timeout(self.now);
            self.pump(peer);
        }
    }

    /// The peer at `addr` (`sim_addr` read backwards), if there is one.
    pub(super) fn index_of(&self, addr: &SocketAddr) -> Option<usize> {
        let SocketAddr::V4(a) = addr else { return None };
        let [_, x, y, z] = a.ip().octets();
        let i = (((x as usize) << 16) | ((y as usize) << 8) | z as usize).checked_sub(1)?;
        (i < self.len() && sim_addr(i) == *addr).then_some(i)
    }

    /// Move what peer `i` wants sent into the queue and collect its finished ops.
    pub(super) fn pump(&mut self, i: usize) {
        for (addr, contact) in self.peers[i].take_contact_changes() {
            let b = self.index_of(&addr);
            if let Some((w, b)) = self.wan.as_mut().zip(b) {
                w.links.mark(i, b, contact);
            }
        }
        while let Some(t) = self.peers[i].poll_transmit() {
            if self.wan.is_some() {
                self.send_wan(i, t);
                continue;
            }
            match self.index_of(&t.to) {
                Some(to) => self.schedule(
                    self.now + LATENCY_US,
                    Event::Request { from: i, to, token: t.token, request: t.request, trip: Trip::default() },
                ),
                None => {
                    let kind = kind_of(&t.request);
                    let reply =
                        Event::Reply { to: i, from: i, token: t.token, kind, reply: None, trip: Trip::default() };
                    self.schedule(self.now + LATENCY_US, reply)
                }
            }
        }
        while let Some((client, r)) = self.peers[i].poll_event() {
            if let Some(w) = self.wan.as_mut().filter(|w| w.trace.peer == Some(i)) {
                let path = w.trace.path();
                w.paths.insert(client, path);
            }
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
