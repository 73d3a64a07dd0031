//! The simulated network on the WAN model (issue 12): the real protocol core, each pair of
//! peers at a stable internet round-trip time, connections opened and kept as the built-in
//! transport does (TCP and Noise round trips, caps, eviction, idle timeout), a fraction of
//! the routing contacts dead (stopped without their contacts knowing: silent, so requests to
//! them wait for the request timeout), and each peer a CPU queue with costs measured here at
//! start-up (`cpucost`). `peer::sim`'s module notes describe the model; BENCHMARKS.md keeps
//! its parameters and the figures.
//!
//! Per network size: tables as a long-running peer's (`simbench::fill_buckets`), then
//! `--dead` of the peers stopped, then `--sets` sets of `--value-size` bytes, `--refs` refs of
//! the stored keys and `--missing` refs of keys nobody stored, one after another from random
//! live peers, `--gap-ms` of virtual time after each. Every operation's critical path is
//! traced (`Sim::trace`): round trips on it and where its time went.

use crate::simbench::fill_buckets;
use crate::{facts, pct_u64, table};
use peer::consts::{DEFAULT_REPLICATION, REQUEST_TIMEOUT_US};
use peer::core::{MaintenanceCounters, Op, OpResult, ABANDON_MIN_US, ABANDON_US, STRAGGLER_US};
use peer::sim::{
    rtt_quantiles, CpuCosts, LinkStats, Path, PeerConfig, Sim, Transport, WanConfig, HEIGHT_MEDIAN_MS, HEIGHT_SIGMA,
    MAP_SCALE, REGIONS, SPREAD_MS,
};
use peer::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Opts {
    /// Network sizes, one run each
    #[arg(long, num_args = 1.., default_values_t = [10_000usize, 100_000], value_name = "N")]
    pub peers: Vec<usize>,
    /// Fraction of the peers stopped after the tables are built (their contacts do not know)
    #[arg(long, default_value_t = 0.10, value_name = "F")]
    pub dead: f64,
    /// Seed of every random choice
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sets measured (each from a random live peer)
    #[arg(long, default_value_t = 200)]
    pub sets: usize,
    /// Refs of stored keys measured
    #[arg(long, default_value_t = 500)]
    pub refs: usize,
    /// Refs of keys nobody stored
    #[arg(long, default_value_t = 200)]
    pub missing: usize,
    /// Bytes per value
    #[arg(long, default_value_t = 1000, value_name = "B")]
    pub value_size: usize,
    /// Virtual time after each operation, so what it set off settles
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub gap_ms: u64,
    /// Charge no CPU (the network's figures alone)
    #[arg(long)]
    pub no_cpu: bool,
    /// Once the tables are built, connect every peer to each of its routing contacts (as a
    /// peer does when a contact joins its table), before the warm-up: the transport's rules
    /// then keep or close them
    #[arg(long)]
    pub warm: bool,
    /// Connection set-up charged, one run each: tcp (the built-in transport: TCP's round
    /// trip, then Noise) or quic (a what-if: no TCP round trip, the request riding 0-RTT in
    /// the first flight when the key is known; a model estimate)
    #[arg(long, num_args = 1.., default_values = ["tcp"], value_name = "T")]
    pub transport: Vec<String>,
}

/// The figures the side-by-side summary compares.
struct Summary {
    peers: usize,
    transport: &'static str,
    ref_found: f64,
    refs: [u64; 3],
    set: [u64; 2],
    missing: u64,
}

/// What one kind of operation did, op by op.
#[derive(Default)]
struct Phase {
    name: &'static str,
    ok: usize,
    lat: Vec<u64>,
    paths: Vec<Path>,
    requests: Vec<u64>,
    /// Connections the caller dialed.
    dials: Vec<u64>,
    messages: Vec<u64>,
    handshakes: Vec<u64>,
    dead_dials: Vec<u64>,
}

impl Phase {
    fn ops(&self) -> usize {
        self.lat.len()
    }

    fn pct(&self, p: f64) -> u64 {
        pct_u64(&self.lat, p)
    }

    /// p50 of what `f` says of each op's critical path.
    fn path_pct(&self, p: f64, f: impl Fn(&Path) -> u64) -> u64 {
        pct_u64(&self.paths.iter().map(f).collect::<Vec<u64>>(), p)
    }

    fn mean(v: &[u64]) -> f64 {
        v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
    }
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

pub fn main(o: &Opts) -> Result<(), String> {
    if !(0.0..0.9).contains(&o.dead) || o.sets == 0 || o.peers.iter().any(|&n| n < 100) {
        return Err("need --dead in 0..0.9, --sets >= 1 and every --peers >= 100".into());
    }
    println!("WAN model: sizes {:?}, {:.0}% dead, seed {}; {}", o.peers, 100.0 * o.dead, o.seed, crate::machine());
    let regions: Vec<String> = REGIONS.iter().map(|r| format!("{} {:.0}%", r.name, 100.0 * r.weight)).collect();
    println!(
        "RTT = |pos a - pos b| + height a + height b: regions {} (map scale {MAP_SCALE}, spread {SPREAD_MS} ms), \
         heights log-normal (median {HEIGHT_MEDIAN_MS} ms, sigma {HEIGHT_SIGMA})",
        regions.join(", ")
    );
    let cpu = if o.no_cpu {
        println!("\nCPU: not charged (--no-cpu)");
        CpuCosts::ZERO
    } else {
        let (c, rows) = crate::cpucost::measure(o.value_size)?;
        println!("\nCPU charged per message and handshake, measured now (frame + encode + seal; open + decode):");
        table(&["what", "bytes", "send µs", "receive µs"], &rows);
        c
    };
    let mut transports = Vec::new();
    for t in &o.transport {
        transports.push(match t.as_str() {
            "tcp" => ("tcp", Transport::Tcp),
            "quic" => ("quic (model estimate)", Transport::Quic),
            _ => return Err(format!("--transport {t}: tcp or quic")),
        });
    }
    let mut summaries = Vec::new();
    for &n in &o.peers {
        for &(name, transport) in &transports {
            summaries.push(run(o, n, WanConfig { cpu, transport }, name)?);
        }
    }
    if summaries.len() > 1 {
        println!("\nside by side (quic: a what-if of the model, not a transport; p50 / p90 / p99 ms):");
        let rows: Vec<Vec<String>> = summaries
            .iter()
            .map(|s| {
                vec![
                    s.peers.to_string(),
                    s.transport.to_string(),
                    format!("{:.1}%", s.ref_found),
                    format!("{} / {} / {}", ms(s.refs[0]), ms(s.refs[1]), ms(s.refs[2])),
                    format!("{} / {}", ms(s.set[0]), ms(s.set[1])),
                    ms(s.missing),
                ]
            })
            .collect();
        table(&["peers", "transport", "refs found", "ref p50/p90/p99", "set p50/p99", "missing p50"], &rows);
    }
    Ok(())
}

fn run(o: &Opts, n: usize, cfg: WanConfig, transport: &'static str) -> Result<Summary, String> {
    println!("\n==== {n} peers, transport {transport} ====");
    let base = crate::proc_status_bytes("VmRSS");
    let t = Instant::now();
    let mut sim = Sim::with_wan(n, o.seed, PeerConfig::default(), cfg);
    fill_buckets(&mut sim, o.seed);
    let warmed = if o.warm { Some(sim.warm_contacts()) } else { None };
    let build = t.elapsed();
    let mem = crate::proc_status_bytes("VmRSS").saturating_sub(base);
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0x3a0);
    let [p10, p50, p90, p99] = rtt_quantiles(sim.coords(), 1_000_000, &mut rng);
    println!(
        "RTT of 1,000,000 random pairs: p10 {} p50 {} p90 {} p99 {} ms (model: median ~80, p99 ~400)",
        ms(p10),
        ms(p50),
        ms(p90),
        ms(p99)
    );
    // One maintenance period passes first, every peer alive: each peer's first sweep (and
    // the refresh of its empty buckets it starts) falls in it, a start-up burst no
    // operation should be measured against. Then peers stop, their contacts unaware.
    let t = Instant::now();
    let (m0, v0) = (sim.messages, sim.now);
    sim.wake();
    sim.advance(sim.peers[0].sweep_period());
    let warmup = (t.elapsed(), sim.messages - m0, sim.now - v0);
    let dead = ((n as f64) * o.dead).round() as usize;
    let mut stopped = 0;
    while stopped < dead {
        let i = rng.gen_range(0..n);
        if !sim.is_stopped(i) {
            sim.stop(i);
            stopped += 1;
        }
    }
    let live = sim.live();
    let (t, v0) = (Instant::now(), sim.now);
    let mut sets = Phase { name: "set", ..Phase::default() };
    let mut keys = Vec::new();
    for _ in 0..o.sets {
        let value: Vec<u8> = (0..o.value_size).map(|_| rng.gen()).collect();
        let from = live[rng.gen_range(0..live.len())];
        let r = measure(&mut sim, o, from, Op::Set { value: value.clone().into() }, &mut sets);
        if let OpResult::Key(k) = r {
            sets.ok += 1;
            keys.push((k, value));
        }
    }
    let mut refs = Phase { name: "ref", ..Phase::default() };
    for i in 0..if keys.is_empty() { 0 } else { o.refs } {
        let (key, value) = &keys[i % keys.len()];
        let from = live[rng.gen_range(0..live.len())];
        let r = measure(&mut sim, o, from, Op::Ref { key: *key }, &mut refs);
        refs.ok += usize::from(matches!(r, OpResult::Value(Some(v)) if v[..] == value[..]));
    }
    let mut missing = Phase { name: "missing key", ..Phase::default() };
    for _ in 0..o.missing {
        let from = live[rng.gen_range(0..live.len())];
        let r = measure(&mut sim, o, from, Op::Ref { key: Id::random(&mut rng) }, &mut missing);
        missing.ok += usize::from(matches!(r, OpResult::Value(None)));
    }
    let ops_time = t.elapsed();
    let phases = [&sets, &refs, &missing];
    report(&phases, p50);
    let s = sim.link_stats().unwrap_or_default();
    let m = sim.peers.iter().fold(MaintenanceCounters::default(), |t, p| t + p.maintenance());
    println!();
    facts(&[
        ("peers", format!("{n}, {dead} stopped ({:.0}%) after the warm-up, their contacts unaware", 100.0 * o.dead)),
        ("connections, all peers", links_line(&s)),
        (
            "maintenance since the start, all peers",
            format!(
                "{} re-stores started ({} for records a departed contact held), {} handovers, {} bucket refreshes, {} republishes",
                m.restored, m.departures_restored, m.handed_over, m.bucket_refreshes, m.republished
            ),
        ),
        ("build time", format!("{:.1} s (tables: every bucket up to K random peers of its range)", build.as_secs_f64())),
        (
            "contacts connected at the start",
            warmed.map_or("none (--warm not given)".into(), |w| format!("{w} connections (--warm), before the warm-up")),
        ),
        (
            "warm-up",
            format!(
                "{:.1} s: {:.0} s of virtual time (one maintenance period), {} messages",
                warmup.0.as_secs_f64(),
                warmup.2 as f64 / 1e6,
                warmup.1
            ),
        ),
        (
            "operations' time",
            format!(
                "{:.1} s for {} ops ({:.0} s of virtual time)",
                ops_time.as_secs_f64(),
                phases.iter().map(|p| p.ops()).sum::<usize>(),
                (sim.now - v0) as f64 / 1e6
            ),
        ),
        ("memory per simulated peer", format!("{:.1} KiB (RSS growth {:.0} MiB)", mem as f64 / 1024.0 / n as f64, mem as f64 / 1048576.0)),
        ("peak RSS of the process", format!("{:.0} MiB", crate::proc_status_bytes("VmHWM") as f64 / 1048576.0)),
    ]);
    targets(&refs, &sets, p50, o.dead);
    Ok(Summary {
        peers: n,
        transport,
        ref_found: 100.0 * refs.ok as f64 / refs.ops().max(1) as f64,
        refs: [refs.pct(0.5), refs.pct(0.9), refs.pct(0.99)],
        set: [sets.pct(0.5), sets.pct(0.99)],
        missing: missing.pct(0.5),
    })
}

/// Run one operation from `from`, traced, then let `--gap-ms` pass; record it in `phase`.
fn measure(sim: &mut Sim, o: &Opts, from: usize, op: Op, phase: &mut Phase) -> OpResult {
    let links = |sim: &Sim| sim.link_stats().unwrap_or_default();
    let (m0, q0, d0, l0) = (sim.messages, sim.peers[from].counters().requests_sent(), sim.dials(from), links(sim));
    sim.trace(Some(from));
    let t0 = sim.now;
    let c = sim.start(from, op);
    let r = sim.run_until(c);
    phase.lat.push(sim.now - t0);
    phase.paths.push(sim.take_path(c).unwrap_or_default());
    phase.requests.push(sim.peers[from].counters().requests_sent() - q0);
    phase.dials.push(sim.dials(from) - d0);
    sim.advance(o.gap_ms * 1000);
    let l = links(sim);
    phase.messages.push(sim.messages - m0);
    phase.handshakes.push(l.dials_ik + l.dials_xx - l0.dials_ik - l0.dials_xx);
    phase.dead_dials.push(l.dead_dials - l0.dead_dials);
    r
}

fn links_line(s: &LinkStats) -> String {
    format!(
        "{} dials (IK {}, XX {}), {} handshakes done, {} to dead peers; requests: {} on open connections, {} held for a \
         handshake; {} evicted by dialers, {} by acceptors, {} refused, {} closed idle",
        s.dials_ik + s.dials_xx,
        s.dials_ik,
        s.dials_xx,
        s.handshakes,
        s.dead_dials,
        s.warm,
        s.held,
        s.evicted_out,
        s.evicted_in,
        s.refused,
        s.idle_closed
    )
}

fn report(phases: &[&Phase], rtt50: u64) {
    println!();
    let rows: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            vec![
                p.name.to_string(),
                p.ops().to_string(),
                p.ok.to_string(),
                format!("{:.1}%", 100.0 * p.ok as f64 / p.ops().max(1) as f64),
                ms(p.pct(0.5)),
                ms(p.pct(0.9)),
                ms(p.pct(0.99)),
                ms(p.pct(1.0)),
                format!("{:.1}", p.pct(0.5) as f64 / rtt50 as f64),
            ]
        })
        .collect();
    table(&["operation", "ops", "ok", "ok %", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50 / RTT p50"], &rows);

    println!("\nper operation, p50 (mean) [p99]:");
    let cell = |v: &[u64]| format!("{} ({:.1}) [{}]", pct_u64(v, 0.5), Phase::mean(v), pct_u64(v, 0.99));
    let of = |p: &Phase, f: fn(&Path) -> u64| p.paths.iter().map(f).collect::<Vec<u64>>();
    let metric = |name: &str, f: &dyn Fn(&Phase) -> Vec<u64>| {
        let mut r = vec![name.to_string()];
        r.extend(phases.iter().map(|p| cell(&f(p))));
        r
    };
    let mut header = vec!["per operation"];
    header.extend(phases.iter().map(|p| p.name));
    table(
        &header,
        &[
            metric("round trips on the critical path", &|p| of(p, |x| u64::from(x.round_trips))),
            metric("  of them on a new connection", &|p| of(p, |x| u64::from(x.cold))),
            metric("  timer waits on it", &|p| of(p, |x| u64::from(x.waits))),
            metric("requests sent by the caller", &|p| p.requests.clone()),
            metric("handshakes by the caller (dials)", &|p| p.dials.clone()),
            metric("messages, all peers, op + gap", &|p| p.messages.clone()),
            metric("handshakes, all peers, op + gap", &|p| p.handshakes.clone()),
            metric("  to dead peers", &|p| p.dead_dials.clone()),
        ],
    );

    println!("\nwhere the time goes: critical path, mean ms (share of the mean latency); timers split by the mark they ended on:");
    let parts: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            let total = Phase::mean(&p.lat).max(1.0);
            let part = |f: fn(&Path) -> u64| {
                let m = Phase::mean(&of(p, f));
                format!("{:.1} ({:.0}%)", m / 1000.0, 100.0 * m / total)
            };
            vec![
                p.name.to_string(),
                format!("{:.1}", total / 1000.0),
                part(|x| x.rtt_us),
                part(|x| x.setup_us),
                part(|x| x.cpu_us),
                part(|x| x.wait_us),
                part(|x| x.straggler_us),
                part(|x| x.abandon_us),
                part(|x| x.timeout_us),
            ]
        })
        .collect();
    table(
        &["operation", "latency", "round trips", "conn. set-up", "CPU", "timers", "straggler", "abandon", "timeout"],
        &parts,
    );

    println!("\nwhat if, p50 / p99 ms: the same critical paths less a part of their time (bounds: the paths would change too):");
    let whatif: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            let q = |f: &dyn Fn(&Path) -> u64| format!("{} / {}", ms(p.path_pct(0.5, f)), ms(p.path_pct(0.99, f)));
            vec![
                p.name.to_string(),
                q(&|x| x.total_us()),
                q(&|x| x.total_us() - x.abandon_us - x.timeout_us),
                q(&|x| x.total_us() - x.wait_us),
                q(&|x| x.total_us() - x.first_setup_us),
                q(&|x| x.total_us() - x.setup_us / 2),
                q(&|x| x.total_us() - x.setup_us),
                q(&|x| x.rtt_us + x.cpu_us),
            ]
        })
        .collect();
    table(
        &["operation", "as measured", "-dead waits", "-all waits", "-first set-up", "-half set-up", "-set-up", "-both"],
        &whatif,
    );
    println!(
        "(-dead waits: no wait ended on an abandon mark or a timeout; -all waits: no timer wait at all; -first \
         set-up: the operation's first requests, to its own routing contacts, on warm connections; -half set-up: \
         half the set-up time of every request; -set-up: none; -both: neither waits nor set-up)"
    );
    println!(
        "(timers per request from the contact's measured RTT (RFC 6298), round trips for a cold connection \
         included: straggler (a quarter of when the reply is due, slot freed) and due (place among the nearest \
         freed) >= {} ms, abandon (RTO) {}-{} ms, request timeout {} ms; replication {DEFAULT_REPLICATION})",
        STRAGGLER_US / 1000,
        ABANDON_MIN_US / 1000,
        ABANDON_US / 1000,
        REQUEST_TIMEOUT_US / 1000
    );
}

fn targets(refs: &Phase, sets: &Phase, rtt50: u64, dead: f64) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let found = 100.0 * refs.ok as f64 / refs.ops().max(1) as f64;
    let (r50, r99, s50) = (refs.pct(0.5), refs.pct(0.99), sets.pct(0.5));
    println!("\ntargets (issue 12, median RTT {} ms):", ms(rtt50));
    table(
        &["target", "wanted", "measured", "verdict"],
        &[
            vec![
                format!("refs found, {:.0}% dead", 100.0 * dead),
                "100%".into(),
                format!("{found:.1}%"),
                verdict(refs.ok == refs.ops()).into(),
            ],
            vec![
                "ref p50".into(),
                format!("<= {} ms", ms(2 * rtt50)),
                format!("{} ms", ms(r50)),
                verdict(r50 <= 2 * rtt50).into(),
            ],
            vec!["ref p99".into(), "<= 1000 ms".into(), format!("{} ms", ms(r99)), verdict(r99 <= 1_000_000).into()],
            vec![
                "set p50".into(),
                format!("<= {} ms", ms(3 * rtt50)),
                format!("{} ms", ms(s50)),
                verdict(s50 <= 3 * rtt50).into(),
            ],
        ],
    );
}
