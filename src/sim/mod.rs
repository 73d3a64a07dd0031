//! A simulated network: many protocol cores in one process on a virtual clock, messages
//! delivered through an event queue. No sockets, no threads, no clock reads, so a run is a
//! pure function of its seed. Tests and the benchmark drive it.
//!
//! Two modes:
//! - Fixed latency (`Sim::new` and the other constructors): every message takes `LATENCY_US`,
//!   a request to a stopped peer fails one latency later, nothing costs CPU, connections are
//!   not modelled. Lookup counts and protocol behaviour, fast.
//! - WAN (`Sim::with_wan`, issue 12): what a request costs on the internet with the built-in
//!   transport. Each pair of peers has a stable round-trip time from synthetic coordinates
//!   (`rtt`); a request to a peer without an open connection first pays TCP's round trip and
//!   the Noise handshake's (IK when the core names the key: the first request rides in
//!   message 1; XX otherwise: it rides in message 3; requests sent meanwhile wait for
//!   message 2), as `net` does; connections are kept and closed by `net::policy`, the
//!   transport's own caps, eviction and idle rules (`link`); a stopped peer is silent, so a
//!   request to it fails at the request timeout; every peer is a CPU queue with measured
//!   costs per message and handshake (`cpu`); and one peer's operations can be traced to
//!   their critical path (`trace`). Its peers start at even intervals over one maintenance
//!   period, so their sweeps spread out as in a network that has run a while; cores given
//!   their contacts directly start their timers with `Sim::wake`.
//!
//! `network` is the simulator itself (peers, clock, the fixed-latency mode); `transport` the
//! WAN mode's events (connections, handshakes, CPU); `wan` the WAN mode's state, `rtt` its
//! round-trip times, `link` its connections, `cpu` its CPU queues, `trace` its critical
//! paths; `agenda` holds the events and their queue.

mod agenda;
mod cpu;
mod link;
mod network;
mod rtt;
mod trace;
mod transport;
mod wan;

pub use cpu::{CpuCosts, Step as HandshakeStep};
pub use link::LinkStats;
pub use network::{PeerConfig, Sim, Tamper, Traffic, LATENCY_US};
pub use rtt::{
    quantiles as rtt_quantiles, Coord, Region, HEIGHT_MEDIAN_MS, HEIGHT_SIGMA, MAP_SCALE, REGIONS, SPREAD_MS,
};
pub use trace::Path;
pub use wan::{Transport, WanConfig};
