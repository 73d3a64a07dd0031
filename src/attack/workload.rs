//! The honest workload, run while the attacks are measured: stores and reads from honest
//! peers (never the victim itself, whose service to others is what an attack targets), at a
//! steady pace, of five kinds:
//! - `set`, `ref`: values of random keys, read back from another peer;
//! - `near set`, `near ref`: values whose keys share `NEAR_BITS` bits with the target, so their
//!   nearest peers are the attacked ones (the victim, or the Sybils and fake contacts);
//! - `warm`: a request to the victim alone (`bag_query_at`), on the connection the asking
//!   peer already holds to it.
//!
//! Every operation's outcome and latency is tallied by kind; the values stored are kept, to
//! read back at the end (`lost`).

use super::testnet::{near_value, Testnet};
use crate::id::Id;
use crate::wire::BagKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The kinds of operation, in table order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpKind {
    Set,
    Ref,
    NearSet,
    NearRef,
    Warm,
}

impl OpKind {
    pub const ALL: [OpKind; 5] = [OpKind::Set, OpKind::Ref, OpKind::NearSet, OpKind::NearRef, OpKind::Warm];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Set => "set",
            OpKind::Ref => "ref",
            OpKind::NearSet => "near set",
            OpKind::NearRef => "near ref",
            OpKind::Warm => "warm",
        }
    }
}

/// Outcomes of one kind of operation.
#[derive(Clone, Default, Debug)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// Every operation's latency, failed ones too (a timeout is what a user waits).
    pub latencies: Vec<Duration>,
}

impl Tally {
    pub fn count(&self) -> u64 {
        self.ok + self.failed
    }

    /// Fraction that succeeded (1 when none ran).
    pub fn success(&self) -> f64 {
        if self.count() == 0 {
            1.0
        } else {
            self.ok as f64 / self.count() as f64
        }
    }

    /// The `p` quantile of the latencies (0..=1), None when none ran.
    pub fn quantile(&self, p: f64) -> Option<Duration> {
        let mut v = self.latencies.clone();
        v.sort();
        v.get(((v.len().max(1) - 1) as f64 * p).round() as usize).copied()
    }

    fn add(&mut self, ok: bool, d: Duration) {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        self.latencies.push(d);
    }

    fn merge(&mut self, o: &Tally) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.latencies.extend_from_slice(&o.latencies);
    }
}

/// One phase's tallies, indexed like `OpKind::ALL`.
#[derive(Clone, Default, Debug)]
pub struct PhaseStats {
    pub tallies: [Tally; 5],
}

impl PhaseStats {
    pub fn of(&self, k: OpKind) -> &Tally {
        &self.tallies[k as usize]
    }
}

/// A value the workload stored, to read back.
struct Kept {
    key: Id,
    value: Vec<u8>,
    near: bool,
    /// The peer that stored it: reads go to another.
    origin: usize,
}

/// The honest workload over one testnet.
pub struct Workload<'a> {
    net: &'a Testnet,
    /// Operations per second, all kinds together.
    rate: f64,
    threads: usize,
    seed: u64,
    kept: Mutex<Vec<Kept>>,
}

impl<'a> Workload<'a> {
    pub fn new(net: &'a Testnet, rate: f64, threads: usize, seed: u64) -> Workload<'a> {
        Workload { net, rate: rate.max(0.1), threads: threads.max(1), seed, kept: Mutex::new(Vec::new()) }
    }

    /// Store `n` values of each kind, untallied, so the first reads have something to read.
    pub fn prime(&self, n: usize) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x9e1);
        for _ in 0..n {
            self.op(OpKind::Set, &mut rng);
            self.op(OpKind::NearSet, &mut rng);
        }
    }

    /// Run for `seconds`; `phase` seeds its randomness. Operations under way at the end are
    /// waited for (each gives up within the protocol's operation timeout).
    pub fn phase(&self, seconds: f64, phase: u64) -> PhaseStats {
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut out = PhaseStats::default();
        let parts: Vec<PhaseStats> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..self.threads)
                .map(|t| {
                    s.spawn(move || {
                        let mut rng = StdRng::seed_from_u64(self.seed ^ (phase << 32) ^ t as u64);
                        let mut stats = PhaseStats::default();
                        for slot in (t..).step_by(self.threads) {
                            let due = start + Duration::from_secs_f64(slot as f64 / self.rate);
                            if due >= end {
                                break;
                            }
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            let kind = OpKind::ALL[slot % OpKind::ALL.len()];
                            let t0 = Instant::now();
                            let ok = self.op(kind, &mut rng);
                            stats.tallies[kind as usize].add(ok, t0.elapsed());
                        }
                        stats
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        for p in &parts {
            for (a, b) in out.tallies.iter_mut().zip(&p.tallies) {
                a.merge(b);
            }
        }
        out
    }

    /// A random honest peer other than the victim, and other than `not`.
    fn origin(&self, rng: &mut StdRng, not: Option<usize>) -> usize {
        let n = self.net.peers.len();
        loop {
            let i = rng.gen_range(0..n);
            if (i != self.net.victim || n == 1) && Some(i) != not {
                return i;
            }
        }
    }

    /// Run one operation; true if it did what was asked.
    fn op(&self, kind: OpKind, rng: &mut StdRng) -> bool {
        let near = matches!(kind, OpKind::NearSet | OpKind::NearRef);
        match kind {
            OpKind::Set | OpKind::NearSet => {
                let value = if near {
                    near_value(&self.net.target, rng.gen_range(64..512), rng)
                } else {
                    (0..rng.gen_range(64..2048)).map(|_| rng.gen()).collect()
                };
                let origin = self.origin(rng, None);
                let ok = self.net.peers[origin].set(&value).is_ok();
                if ok {
                    let kept = Kept { key: Id::hash(&value), value, near, origin };
                    self.kept.lock().unwrap_or_else(|e| e.into_inner()).push(kept);
                }
                ok
            }
            OpKind::Ref | OpKind::NearRef => {
                let pick = {
                    let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
                    let of_kind: Vec<&Kept> = kept.iter().filter(|k| k.near == near).collect();
                    (!of_kind.is_empty()).then(|| {
                        let k = of_kind[rng.gen_range(0..of_kind.len())];
                        (k.key, k.value.clone(), k.origin)
                    })
                };
                // Nothing stored yet: a store instead, so the phase still measures something.
                let Some((key, value, origin)) = pick else {
                    return self.op(if near { OpKind::NearSet } else { OpKind::Set }, rng);
                };
                let from = self.origin(rng, Some(origin));
                matches!(self.net.peers[from].get(&key), Ok(Some(v)) if v == value)
            }
            OpKind::Warm => {
                let from = self.origin(rng, None);
                let victim = self.net.victim().uid();
                self.net.peers[from].bag_query_at(&victim, BagKind::Popular, &Id::random(rng), 20).is_ok()
            }
        }
    }

    /// Read back every value stored so far, each from a peer other than the one that stored
    /// it: (near-key values lost, near-key values stored, others lost, others stored).
    pub fn lost(&self) -> (usize, usize, usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x1057);
        let mut out = (0, 0, 0, 0);
        for k in kept.iter() {
            let from = self.origin(&mut rng, Some(k.origin));
            let found = matches!(self.net.peers[from].get(&k.key), Ok(Some(v)) if v == k.value);
            if k.near {
                out.0 += usize::from(!found);
                out.1 += 1;
            } else {
                out.2 += usize::from(!found);
                out.3 += 1;
            }
        }
        out
    }
}
