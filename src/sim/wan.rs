//! The WAN mode's state: every peer's coordinates and CPU queue, the connections, the trace.

use super::agenda::Trip;
use super::cpu::{self, CpuCosts};
use super::link::Links;
use super::rtt::Coord;
use super::trace::{self, Path, Trace};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;

/// The WAN mode's settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct WanConfig {
    /// CPU per message and per handshake (`CpuCosts::ZERO`: free).
    pub cpu: CpuCosts,
    /// What a new connection costs in round trips.
    pub transport: Transport,
}

/// The transport whose connection set-up the model charges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// The built-in transport: TCP's round trip, then Noise (IK: the requests ride in
    /// message 1; XX: in message 3).
    #[default]
    Tcp,
    /// A what-if, for issue 12's closing note: a QUIC-like transport over UDP, no TCP round
    /// trip: the handshake's first flight leaves at once, with the requests riding in it
    /// (0-RTT) when the key is known; so a cold request to a known key costs one round trip,
    /// one to an unknown key two. Same handshake CPU as Noise. An estimate, not a transport.
    Quic,
}

/// Salt of the coordinates' generator, so drawing them leaves the peers' seeds as they are.
const COORD_SEED: u64 = 0x3a7e_11c0_0d5e_ed00;

/// The WAN mode's state.
pub(super) struct Wan {
    pub coords: Vec<Coord>,
    pub cpu: CpuCosts,
    pub transport: Transport,
    pub queue: cpu::Queue,
    pub links: Links<Trip>,
    pub trace: Trace,
    /// Critical paths of the traced peer's finished operations, by client token.
    pub paths: HashMap<u64, Path>,
    rng: StdRng,
}

impl Wan {
    pub fn new(seed: u64, cfg: WanConfig) -> Wan {
        Wan {
            coords: Vec::new(),
            cpu: cfg.cpu,
            transport: cfg.transport,
            queue: cpu::Queue::default(),
            links: Links::default(),
            trace: Trace::default(),
            paths: HashMap::new(),
            rng: StdRng::seed_from_u64(seed ^ COORD_SEED),
        }
    }

    /// A new peer: its coordinates, CPU queue and connection lists.
    pub fn add_peer(&mut self) {
        let c = Coord::draw(&mut self.rng);
        self.coords.push(c);
        self.queue.add_peer();
        self.links.add_peer();
    }

    pub fn one_way(&self, a: usize, b: usize) -> u64 {
        self.coords[a].one_way_us(&self.coords[b])
    }

    /// The trace node of what `peer` sends now, if it is the traced peer.
    pub fn cause(&self, peer: usize) -> trace::Cause {
        if self.trace.peer == Some(peer) {
            self.trace.current
        } else {
            trace::NONE
        }
    }

    /// An event other than a reply reaches `peer` at `now`: a trace node if it is traced.
    pub fn note(&mut self, peer: usize, now: u64) {
        if self.trace.peer == Some(peer) {
            self.trace.other(now);
        }
    }
}
