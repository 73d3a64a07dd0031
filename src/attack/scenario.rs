//! One attack measured: a fresh testnet, the honest workload before, during and after the
//! attack, the process's memory in each phase, the attacker's hold on the target's
//! neighbourhood, and at the end every value the workload stored read back.

use super::ctx::{AttackSummary, Ctx, Params};
use super::measure::{poisoned, RssWatch};
use super::sybil::Variant;
use super::testnet::{honest_options, rss_bytes, Layout, Testnet};
use super::workload::{PhaseStats, Workload};
use super::{churn, iam_flood, partial, storage, sybil, unread};
use crate::consts::MAX_VALUES;
use crate::node::Options;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The attacks of issue 13.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Unread,
    Partial,
    IamFlood,
    SybilSwallow,
    SybilDead,
    SybilSilent,
    Storage,
    Churn,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Unread,
        Kind::Partial,
        Kind::IamFlood,
        Kind::SybilSwallow,
        Kind::SybilDead,
        Kind::SybilSilent,
        Kind::Storage,
        Kind::Churn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Unread => "unread",
            Kind::Partial => "partial",
            Kind::IamFlood => "iam",
            Kind::SybilSwallow => "sybil-swallow",
            Kind::SybilDead => "sybil-dead",
            Kind::SybilSilent => "sybil-silent",
            Kind::Storage => "storage",
            Kind::Churn => "churn",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The default run: short (10 s of attack; 20 s for the storage flood, which fills one
    /// peer a second), at the strength issue 13 measured.
    pub fn defaults(self) -> Params {
        let (rate, count) = match self {
            Kind::Unread => (100.0, 2),
            Kind::Partial => (100.0, 300),
            Kind::IamFlood => (1.0, 20),
            Kind::SybilSwallow | Kind::SybilDead | Kind::SybilSilent => (0.2, 20),
            Kind::Storage => (0.0, 3),
            Kind::Churn => (2400.0, 300),
        };
        let seconds = if self == Kind::Storage { 20.0 } else { 10.0 };
        Params { seconds, rate, count }
    }

    /// What `rate` and `count` mean for this attack.
    pub fn units(self) -> (&'static str, &'static str) {
        match self {
            Kind::Unread => ("requests/s per connection", "connections (ref, peers, ...)"),
            Kind::Partial => ("connections opened/s", "connections held, each 1 MiB - 1 byte of a frame"),
            Kind::IamFlood => ("rounds/s", "fake uids near the target, + #(iam 0 0), to every peer"),
            Kind::SybilSwallow | Kind::SybilDead | Kind::SybilSilent => {
                ("introduction rounds/s", "Sybils near the target")
            }
            Kind::Storage => ("stores/s (0: unpaced)", "connections at once"),
            Kind::Churn => ("new connections/s", "attacker connections held"),
        }
    }

    fn attack(self, cx: &Ctx, p: &Params) {
        match self {
            Kind::Unread => unread::run(cx, p),
            Kind::Partial => partial::run(cx, p),
            Kind::IamFlood => iam_flood::run(cx, p),
            Kind::SybilSwallow => sybil::run(cx, p, Variant::Swallow),
            Kind::SybilDead => sybil::run(cx, p, Variant::Dead),
            Kind::SybilSilent => sybil::run(cx, p, Variant::Silent),
            Kind::Storage => storage::run(cx, p),
            Kind::Churn => churn::run(cx, p),
        }
    }
}

/// The network and the honest workload around an attack.
#[derive(Clone, Debug)]
pub struct Setup {
    pub peers: usize,
    pub layout: Layout,
    pub seed: u64,
    /// Seconds measured before the attack, and after it (None: as long as the attack).
    pub before_s: f64,
    pub after_s: Option<f64>,
    /// Honest operations per second (all kinds together), and threads running them.
    pub honest_rate: f64,
    pub honest_threads: usize,
    /// The attack stops early once the process's RSS grew this much over the baseline.
    pub rss_cap: u64,
    pub options: Options,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            peers: 24,
            layout: Layout::Spread,
            seed: 1,
            before_s: 4.0,
            after_s: None,
            honest_rate: 50.0,
            honest_threads: 4,
            rss_cap: 1 << 30,
            options: honest_options(),
        }
    }
}

/// One phase's figures.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    pub ops: PhaseStats,
    /// The highest RSS seen in the phase.
    pub rss_peak: u64,
    /// (attacker or nonsense contacts, contacts) among the honest peers' nearest to the
    /// target, at the phase's end.
    pub poisoned: (usize, usize),
    /// Values the victim holds at the phase's end, peers holding the most they may
    /// (`MAX_VALUES`), and the victim's open connections.
    pub victim_values: usize,
    pub full_peers: usize,
    pub victim_connections: usize,
}

/// One attack's figures.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub kind: Kind,
    pub params: Params,
    pub layout: Layout,
    pub peers: usize,
    /// Contacts in all routing tables once the network formed.
    pub contacts: usize,
    pub victim: SocketAddr,
    /// RSS when the measurements began.
    pub rss_base: u64,
    /// Before, during, after.
    pub phases: [Phase; 3],
    pub attack: AttackSummary,
    /// How long the attack ran, and whether the memory watchdog stopped it.
    pub attack_s: f64,
    pub aborted: bool,
    /// Every value the workload stored, read back at the end: (near-key lost, near-key
    /// stored, others lost, others stored).
    pub lost: (usize, usize, usize, usize),
}

/// Values stored before measuring, so the first reads have something to read.
const PRIME: usize = 10;

/// Run `kind` with `p` on a fresh network made as `setup` says.
pub fn run(kind: Kind, p: &Params, setup: &Setup) -> io::Result<Outcome> {
    let net = Testnet::start(setup.peers, setup.layout, setup.seed, &setup.options)?;
    let contacts = net.contacts();
    let wl = Workload::new(&net, setup.honest_rate, setup.honest_threads, setup.seed);
    wl.prime(PRIME);
    let rss_base = rss_bytes();
    let phase = |i: u64, seconds: f64, watch: RssWatch, attack: Option<&(dyn Fn() + Sync)>| {
        let ops = std::thread::scope(|s| {
            let a = attack.map(|f| s.spawn(f));
            let ops = wl.phase(seconds, i);
            if let Some(a) = a {
                let _ = a.join();
            }
            ops
        });
        let rss_peak = watch.finish();
        let v = net.victim().stats().unwrap_or_default();
        let full_peers = net.peers.iter().filter(|p| p.stats().is_ok_and(|s| s.values >= MAX_VALUES)).count();
        Phase {
            ops,
            rss_peak,
            poisoned: poisoned(&net),
            victim_values: v.values,
            full_peers,
            victim_connections: v.open_connections,
        }
    };
    let before = phase(0, setup.before_s, RssWatch::start(None), None);

    let abort = Arc::new(AtomicBool::new(false));
    let watch = RssWatch::start(Some((before.rss_peak + setup.rss_cap, abort.clone())));
    let start = Instant::now();
    let cx = Ctx {
        net: &net,
        until: start + Duration::from_secs_f64(p.seconds),
        abort: &abort,
        seed: setup.seed,
        stats: Default::default(),
    };
    let ended = OnceLock::new();
    let attack = || {
        kind.attack(&cx, p);
        let _ = ended.set(Instant::now());
    };
    let during = phase(1, p.seconds, watch, Some(&attack));
    let attack_s = ended.get().map_or(0.0, |e| e.duration_since(start).as_secs_f64());
    let aborted = abort.load(Ordering::Relaxed);

    let after = phase(2, setup.after_s.unwrap_or(p.seconds), RssWatch::start(None), None);
    let lost = wl.lost();
    Ok(Outcome {
        kind,
        params: *p,
        layout: setup.layout,
        peers: setup.peers,
        contacts,
        victim: net.victim().addr(),
        rss_base,
        phases: [before, during, after],
        attack: cx.stats.summary(),
        attack_s,
        aborted,
        lost,
    })
}
