//! What every attack is given and counts: the network, when to stop (the deadline, or the
//! abort flag a memory watchdog raises), a seed, the attacker's counters, and pacing.

use super::testnet::Testnet;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How hard an attack pushes. Each attack documents what `rate` and `count` mean for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// How long the attack runs.
    pub seconds: f64,
    /// Its pace, per second (0: as fast as it can).
    pub rate: f64,
    /// Its size: connections, Sybils, fake uids ...
    pub count: usize,
}

/// What the attacker did.
#[derive(Default, Debug)]
pub struct AttackStats {
    /// Connections opened (handshakes completed).
    pub connections: AtomicU64,
    /// Requests (or frames, or partial frames) sent.
    pub requests: AtomicU64,
    /// Plaintext bytes sent (or queued to send).
    pub bytes: AtomicU64,
    /// Requests the victims accepted (`#t` to a store, a fake contact's `welcome`).
    pub accepted: AtomicU64,
    /// Requests honest peers sent to the attacker's listeners (Sybils).
    pub received: AtomicU64,
    /// Connections the victims closed, or that failed to open.
    pub closed: AtomicU64,
}

/// `AttackStats` read at the end of a run.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct AttackSummary {
    pub connections: u64,
    pub requests: u64,
    pub bytes: u64,
    pub accepted: u64,
    pub received: u64,
    pub closed: u64,
}

impl AttackStats {
    pub fn summary(&self) -> AttackSummary {
        let g = AttackStats::get;
        AttackSummary {
            connections: g(&self.connections),
            requests: g(&self.requests),
            bytes: g(&self.bytes),
            accepted: g(&self.accepted),
            received: g(&self.received),
            closed: g(&self.closed),
        }
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One attack's run.
pub struct Ctx<'a> {
    pub net: &'a Testnet,
    pub until: Instant,
    pub abort: &'a AtomicBool,
    pub seed: u64,
    pub stats: AttackStats,
}

impl Ctx<'_> {
    /// Still attacking: before the deadline and not aborted.
    pub fn live(&self) -> bool {
        Instant::now() < self.until && !self.abort.load(Ordering::Relaxed)
    }

    /// An independent generator for one thread of the attack.
    pub fn rng(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Sleep `d`, or less if the run ends first.
    pub fn sleep(&self, d: Duration) {
        let end = (Instant::now() + d).min(self.until);
        while self.live() && Instant::now() < end {
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
        }
    }
}

/// A fresh Noise static key: free for an attacker, so it never reuses one.
pub fn fresh_key(rng: &mut impl RngCore) -> [u8; 32] {
    let mut k = [0u8; 32];
    rng.fill_bytes(&mut k);
    k
}

/// Events at a steady `rate` per second (0: no waiting), shared by `threads` threads: thread
/// `t`'s `n`th event is due at `(n * threads + t) / rate` seconds from the start.
pub struct Pace {
    start: Instant,
    rate: f64,
    threads: u64,
    slot: u64,
}

impl Pace {
    pub fn new(rate: f64, threads: usize, thread: usize) -> Pace {
        Pace { start: Instant::now(), rate, threads: threads.max(1) as u64, slot: thread as u64 }
    }

    /// Wait for the next event's turn; false once the run is over.
    pub fn next(&mut self, cx: &Ctx) -> bool {
        if self.rate > 0.0 {
            let due = self.start + Duration::from_secs_f64(self.slot as f64 / self.rate);
            self.slot += self.threads;
            let now = Instant::now();
            if due > now {
                cx.sleep(due - now);
            }
        }
        cx.live()
    }
}
