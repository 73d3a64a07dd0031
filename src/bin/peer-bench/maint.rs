//! Maintenance cost in steady state (issue 9), on the simulated network: N peers joined for
//! real (`bootstrap_all`), V values from P publishers that stay, no peer leaving; after a
//! warm-up (so every holder's re-store schedule is in its steady state), what keeps the data
//! alive costs over a window of virtual hours: maintenance tasks (`MaintenanceCounters`) and
//! the messages and bytes they cause, per peer per hour. Nothing else runs in the window, so
//! every message in it is maintenance (or a ping a maintenance lookup set off).
//!
//! Twice: with the Kademlia paper's optimisation (a holder refreshed by the publisher's
//! republish or by another holder's re-store skips its own), and without it
//! (`CoreConfig::restore_always`: every holder re-stores every interval), to show what it saves.

use crate::{facts, table};
use peer::consts::{RECORD_LIFETIME_US, REPUBLISH_US};
use peer::core::RequestKind;
use peer::core::{MaintenanceCounters, Op, OpResult};
use peer::sim::{PeerConfig, Sim, Traffic};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

struct Run {
    tasks: MaintenanceCounters,
    traffic: Traffic,
    /// Values readable at the end, of those sampled.
    readable: (usize, usize),
    wall_s: f64,
}

#[derive(clap::Args)]
pub struct Opts {
    /// Simulated peers
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub peers: usize,
    /// Values stored
    #[arg(long, default_value_t = 10_000, value_name = "V")]
    pub values: usize,
    /// Peers that publish them (and stay)
    #[arg(long, default_value_t = 100, value_name = "P")]
    pub publishers: usize,
    /// Virtual hours before the window, so re-store schedules reach their steady state
    #[arg(long, default_value_t = 2, value_name = "H")]
    pub warmup_hours: u64,
    /// Virtual hours measured
    #[arg(long, default_value_t = 3, value_name = "H")]
    pub hours: u64,
    /// Seed of every random choice
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 100, value_name = "B")]
    pub value_size: usize,
    /// Republish interval, seconds
    #[arg(long, default_value_t = REPUBLISH_US / 1_000_000, value_name = "S")]
    pub republish_s: u64,
}

pub fn main(o: &Opts) -> Result<(), String> {
    let (n, values, publishers, warmup_h, hours, seed, size) =
        (o.peers, o.values, o.publishers, o.warmup_hours, o.hours, o.seed, o.value_size);
    let republish_us = o.republish_s.saturating_mul(1_000_000);
    if n < 40 || publishers == 0 || publishers > n || hours == 0 || republish_us == 0 {
        return Err("need --peers >= 40, 1 <= --publishers <= --peers, --hours >= 1, --republish-s >= 1".into());
    }
    println!(
        "maintenance cost: {n} simulated peers, {values} values of {size} bytes from {publishers} publishers, \
         republish every {} s, lifetime {} h; warm-up {warmup_h} h, window {hours} h; seed {seed}; {}",
        republish_us / 1_000_000,
        RECORD_LIFETIME_US / 3_600_000_000,
        crate::machine()
    );
    let mut runs = Vec::new();
    for restore_always in [false, true] {
        let cfg = PeerConfig { republish_us, restore_always, ..PeerConfig::default() };
        runs.push(run(n, values, publishers, size, warmup_h, hours, seed, cfg)?);
    }
    let per = |x: u64| format!("{:.1}", x as f64 / n as f64 / hours as f64);
    let kib = |x: u64| format!("{:.1}", x as f64 / 1024.0 / n as f64 / hours as f64);
    let pair = |f: &dyn Fn(&Run) -> String| vec![f(&runs[0]), f(&runs[1])];
    let mut rows = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Run) -> String, unit: &str| {
        let mut r = vec![name.to_string()];
        r.extend(pair(f));
        r.push(unit.to_string());
        rows.push(r);
    };
    row("republish tasks", &|r| per(r.tasks.republished), "per peer per hour (lookup + stores)");
    row("re-store tasks", &|r| per(r.tasks.restored), "per peer per hour (lookup, stores if a holder)");
    row("handovers", &|r| per(r.tasks.handed_over), "per peer per hour (one store each)");
    row("bucket refreshes", &|r| per(r.tasks.bucket_refreshes), "per peer per hour (a lookup each)");
    for (k, name) in RequestKind::ALL.iter().map(|r| r.name()).enumerate() {
        if runs.iter().any(|r| r.traffic.messages[k] > 0) {
            row(&format!("`{name}` messages"), &|r| per(r.traffic.messages[k]), "requests + replies per peer per hour");
        }
    }
    row("all messages", &|r| per(r.traffic.total_messages()), "per peer per hour");
    for (k, name) in RequestKind::ALL.iter().map(|r| r.name()).enumerate() {
        if runs.iter().any(|r| r.traffic.bytes[k] > 0) {
            row(&format!("`{name}` bytes"), &|r| kib(r.traffic.bytes[k]), "KiB per peer per hour");
        }
    }
    row("all bytes", &|r| kib(r.traffic.total_bytes()), "KiB per peer per hour");
    println!();
    table(&["in the window", "optimised", "every holder", "unit"], &rows);
    let (a, b) = (&runs[0], &runs[1]);
    let saved = |x: u64, y: u64| format!("{:.0}%", 100.0 * (1.0 - x as f64 / y.max(1) as f64));
    println!();
    facts(&[
        (
            "the optimisation saves",
            format!(
                "{} of the re-store tasks, {} of the messages, {} of the bytes",
                saved(a.tasks.restored, b.tasks.restored),
                saved(a.traffic.total_messages(), b.traffic.total_messages()),
                saved(a.traffic.total_bytes(), b.traffic.total_bytes())
            ),
        ),
        (
            "readable at the end",
            format!(
                "{}/{} sampled values (optimised), {}/{} (every holder)",
                a.readable.0, a.readable.1, b.readable.0, b.readable.1
            ),
        ),
        ("wall time", format!("{:.1} s (optimised), {:.1} s (every holder)", a.wall_s, b.wall_s)),
        ("bytes", "datum text of each request and reply (`wire::codec`), no framing, no Noise".to_string()),
    ]);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run(
    n: usize,
    values: usize,
    publishers: usize,
    size: usize,
    warmup_h: u64,
    hours: u64,
    seed: u64,
    cfg: PeerConfig,
) -> Result<Run, String> {
    const HOUR: u64 = 3_600_000_000;
    let t = Instant::now();
    let mut sim = Sim::with_peer_config(n, seed, cfg);
    sim.bootstrap_all();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x3a1e);
    let mut keys = Vec::with_capacity(values);
    for v in 0..values {
        let value: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
        let p = v % publishers;
        match sim.run(p, Op::Set { value: value.clone().into() }) {
            OpResult::Key(k) => keys.push((k, value)),
            other => return Err(format!("set {v} from {p} failed: {other:?}")),
        }
    }
    sim.advance(warmup_h * HOUR);
    let sum = |sim: &Sim| sim.peers.iter().map(|p| p.maintenance()).fold(MaintenanceCounters::default(), |a, c| a + c);
    let (m0, t0) = (sum(&sim), sim.traffic);
    sim.count_bytes = true;
    sim.advance(hours * HOUR);
    sim.count_bytes = false;
    let (m1, t1) = (sum(&sim), sim.traffic);
    let tasks = m1 - m0;
    // Both variants must keep the data: a sample read back after the window.
    let sample = 200.min(keys.len());
    let mut ok = 0;
    for (k, v) in keys.iter().step_by((keys.len() / sample.max(1)).max(1)).take(sample) {
        let from = rng.gen_range(publishers..n);
        ok += (sim.run(from, Op::Ref { key: *k }) == OpResult::Value(Some(v.clone().into()))) as usize;
    }
    Ok(Run { tasks, traffic: t1.since(&t0), readable: (ok, sample), wall_s: t.elapsed().as_secs_f64() })
}
