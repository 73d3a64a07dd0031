//! `peer-bench attack KIND|all`: the attacks of issue 13 against 24 honest peers on loopback,
//! each measured before, during and after (honest success and p50/p99 latency per kind of
//! operation, the process's RSS, the attacker's share of the target's neighbourhood, values
//! lost). `all` runs each attack in a child process of its own, so one attack's memory never
//! shows in another's figures.

use peer::attack::scenario::{run, Kind, Setup};
use peer::attack::testnet::Layout;
use peer::attack::{report, Params};
use std::process::Command;

#[derive(clap::Args)]
pub struct Opts {
    /// unread, partial, iam, sybil-swallow, sybil-dead, sybil-silent, storage, churn, or all
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// Seconds of attack (the honest workload is measured as long after it; default: the
    /// attack's own, 10 s, or 20 s for storage)
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
    /// Seed of the network and of every random choice
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The attack's pace (its unit depends on the attack; default: the attack's own)
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// The attack's size: connections, Sybils, fake uids ... (default: the attack's own)
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Honest peers
    #[arg(long, default_value_t = 24)]
    pub peers: usize,
    /// Where honest peers listen: spread (6 per /24 over 127.0.1-4.x) or one (127.0.0.1)
    #[arg(long, default_value = "spread", value_parser = ["spread", "one"])]
    pub layout: String,
    /// Honest operations per second, all kinds together
    #[arg(long, default_value_t = 50.0)]
    pub honest_rate: f64,
    /// Seconds measured before the attack
    #[arg(long, default_value_t = 4.0, value_name = "S")]
    pub before: f64,
    /// Stop an attack once the process grew this much (MiB) over its baseline
    #[arg(long, default_value_t = 1024)]
    pub rss_cap_mib: u64,
}

pub fn main(o: &Opts) -> Result<(), String> {
    if o.seconds.is_some_and(|s| !(0.5..=300.0).contains(&s)) {
        return Err("--seconds is 0.5..=300".into());
    }
    if o.kind == "all" {
        return all(o);
    }
    let kind = Kind::from_name(&o.kind).ok_or_else(|| format!("unknown attack `{}`", o.kind))?;
    let d = kind.defaults();
    let p = Params {
        seconds: o.seconds.unwrap_or(d.seconds),
        rate: o.rate.unwrap_or(d.rate),
        count: o.count.unwrap_or(d.count),
    };
    let setup = Setup {
        peers: o.peers.max(2),
        layout: if o.layout == "one" { Layout::OneAddress } else { Layout::Spread },
        seed: o.seed,
        before_s: o.before,
        honest_rate: o.honest_rate,
        rss_cap: o.rss_cap_mib << 20,
        ..Setup::default()
    };
    println!("{}", crate::machine());
    let out = run(kind, &p, &setup).map_err(|e| format!("cannot run the testnet: {e}"))?;
    print!("{}", report::table(&out));
    Ok(())
}

/// Every attack, each in a child process with the same options.
fn all(o: &Opts) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut failed = Vec::new();
    for k in Kind::ALL {
        let mut args: Vec<String> = vec!["attack".into(), k.name().into()];
        let mut opt = |name: &str, v: String| args.extend([format!("--{name}"), v]);
        if let Some(s) = o.seconds {
            opt("seconds", s.to_string());
        }
        opt("seed", o.seed.to_string());
        opt("peers", o.peers.to_string());
        opt("layout", o.layout.clone());
        opt("honest-rate", o.honest_rate.to_string());
        opt("before", o.before.to_string());
        opt("rss-cap-mib", o.rss_cap_mib.to_string());
        if let Some(r) = o.rate {
            opt("rate", r.to_string());
        }
        if let Some(c) = o.count {
            opt("count", c.to_string());
        }
        println!("\n==== peer-bench {} ====", args.join(" "));
        let status = Command::new(&exe).args(&args).status().map_err(|e| format!("cannot run {}: {e}", k.name()))?;
        if !status.success() {
            failed.push(k.name());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("these attacks failed to run: {}", failed.join(", ")))
    }
}
