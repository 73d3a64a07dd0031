//! Refs from many threads at once: N peers in this process (Rust API), 200 values stored,
//! then T client threads each issue refs of random stored keys from random peers (not the
//! setter) for S seconds, bytes checked. Throughput and latency under load.

use crate::drivers::RustDriver;
use crate::w1::{Driver, SETS};
use crate::{facts, ms, table, Phase, PHASE_HEADER};
use peer::Id;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Opts {
    /// Peers, all in this process
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub peers: usize,
    /// Client threads issuing refs
    #[arg(long, default_value_t = 8, value_name = "T")]
    pub threads: usize,
    /// How long the threads run (1..=120)
    #[arg(long, default_value_t = 10, value_name = "S")]
    pub seconds: u64,
    /// Seed of every random choice
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 1000, value_name = "B")]
    pub value_size: usize,
}

pub fn main(o: &Opts) -> Result<(), String> {
    let (n, threads, seconds, seed, vsize) = (o.peers, o.threads, o.seconds, o.seed, o.value_size);
    if n < 4 || threads == 0 || seconds == 0 || seconds > 120 {
        return Err("need --peers >= 4, --threads >= 1, --seconds in 1..=120".into());
    }
    crate::raise_nofile();
    println!(
        "concurrent refs: {n} peers, {threads} threads, {seconds} s, seed {seed}, values of {vsize} bytes; {}",
        crate::machine()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut d = RustDriver::new(n, &mut rng, 0)?;
    let t = Instant::now();
    let failed = d.bootstrap()?;
    let boot = t.elapsed();
    let mut stored: Vec<(usize, Id, Vec<u8>)> = Vec::with_capacity(SETS);
    for _ in 0..SETS {
        let mut v = vec![0u8; vsize];
        rng.fill_bytes(&mut v);
        let from = rng.gen_range(0..n);
        if let (_, Ok(k)) = d.set(from, &v) {
            stored.push((from, k, v));
        }
    }
    if stored.is_empty() {
        return Err("no value could be stored".into());
    }
    let m0 = d.memory()?;
    let cpu0 = crate::cpu_time(libc::RUSAGE_SELF);
    let t = Instant::now();
    let end = t + Duration::from_secs(seconds);
    let nodes = &d.nodes;
    let stored = &stored;
    let per_thread: Vec<Phase> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|k| {
                let mut rng = StdRng::seed_from_u64(seed ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                s.spawn(move || {
                    let mut p = Phase::new("ref");
                    while Instant::now() < end {
                        let (setter, key, value) = &stored[rng.gen_range(0..stored.len())];
                        let from = loop {
                            let f = rng.gen_range(0..nodes.len());
                            if f != *setter {
                                break f;
                            }
                        };
                        let t = Instant::now();
                        let r = nodes[from].get(key);
                        p.add(t.elapsed(), matches!(&r, Ok(Some(v)) if v == value));
                    }
                    p
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let elapsed = t.elapsed();
    let cpu = crate::cpu_time(libc::RUSAGE_SELF) - cpu0;
    let mut all = Phase::new(&format!("ref x {threads} threads"));
    for p in per_thread {
        all.ops += p.ops;
        all.ok += p.ok;
        all.lat.extend(p.lat);
    }
    let m1 = d.memory()?;
    all.requests = Some(m1.requests - m0.requests);
    all.handshakes = Some(m1.handshakes.saturating_sub(m0.handshakes));
    d.finish()?;
    println!();
    table(&PHASE_HEADER, &[all.row()]);
    println!();
    facts(&[
        (
            "throughput",
            format!(
                "{:.0} refs/s ({} refs in {:.2} s)",
                all.ops as f64 / elapsed.as_secs_f64(),
                all.ops,
                elapsed.as_secs_f64()
            ),
        ),
        (
            "CPU during the load",
            format!(
                "{:.2} s of {:.2} s wall ({:.0}% of one core)",
                cpu.as_secs_f64(),
                elapsed.as_secs_f64(),
                100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64()
            ),
        ),
        ("bootstrap", format!("{} ms, {failed} failed", ms(boot))),
        ("values stored", format!("{} of {SETS}", stored.len())),
    ]);
    Ok(())
}
