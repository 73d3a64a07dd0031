//! An attack's figures as text: what the attacker did, then one row per phase (success and
//! p50/p99 latency of each kind of honest operation, memory, the attacker's share of the
//! target's neighbourhood), then what was lost.

use super::scenario::Outcome;
use super::testnet::Layout;
use super::workload::{OpKind, Tally};
use std::fmt::Write;

const MIB: f64 = 1024.0 * 1024.0;

fn cell(t: &Tally) -> String {
    let ms = |q| t.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    if t.count() == 0 {
        return "-".into();
    }
    format!("{:.1}% {:.0}/{:.0}", t.success() * 100.0, ms(0.5), ms(0.99))
}

/// The table of `o`.
pub fn table(o: &Outcome) -> String {
    let mut s = String::new();
    let (rate_u, count_u) = o.kind.units();
    let layout = match o.layout {
        Layout::Spread => "spread over 127.0.1-4.x",
        Layout::OneAddress => "all on 127.0.0.1",
    };
    let _ = writeln!(
        s,
        "== attack {}: {} s, rate {} {}, count {} {}",
        o.kind.name(),
        o.params.seconds,
        o.params.rate,
        rate_u,
        o.params.count,
        count_u
    );
    let _ = writeln!(
        s,
        "   {} honest peers ({layout}), {} routing contacts in all; victim {}; attacker in 127.0.9.0/24",
        o.peers, o.contacts, o.victim
    );
    let a = &o.attack;
    let _ = writeln!(
        s,
        "   attacker: {} connections, {} requests, {:.1} MiB sent, {} accepted, {} requests received, {} closed/failed; ran {:.1} s{}",
        a.connections,
        a.requests,
        a.bytes as f64 / MIB,
        a.accepted,
        a.received,
        a.closed,
        o.attack_s,
        if o.aborted { " (STOPPED by the memory cap)" } else { "" }
    );
    let _ = writeln!(
        s,
        "   honest operations: success, p50/p99 latency in ms; RSS: growth over the baseline (peak of the phase);"
    );
    let _ = writeln!(s, "   poisoned: attacker contacts among the honest peers' nearest to the target;");
    let _ = writeln!(s, "   values, conns: the victim's; full: peers holding the most values they may");
    let _ = write!(s, "   {:<7}", "phase");
    for k in OpKind::ALL {
        let _ = write!(s, " {:>16}", k.name());
    }
    let _ = writeln!(s, " {:>9} {:>9} {:>7} {:>5} {:>5}", "RSS MiB", "poisoned", "values", "full", "conns");
    for (name, p) in ["before", "during", "after"].iter().zip(&o.phases) {
        let _ = write!(s, "   {name:<7}");
        for k in OpKind::ALL {
            let _ = write!(s, " {:>16}", cell(p.ops.of(k)));
        }
        let grow = (p.rss_peak as f64 - o.rss_base as f64) / MIB;
        let _ = writeln!(
            s,
            " {:>+9.1} {:>9} {:>7} {:>5} {:>5}",
            grow,
            format!("{}/{}", p.poisoned.0, p.poisoned.1),
            p.victim_values,
            p.full_peers,
            p.victim_connections
        );
    }
    let (nl, nt, ol, ot) = o.lost;
    let _ = writeln!(
        s,
        "   RSS: baseline {:.1} MiB, peak growth during the attack {:+.1} MiB; values read back at the end: near-key {} of {} lost, others {} of {} lost",
        o.rss_base as f64 / MIB,
        (o.phases[1].rss_peak as f64 - o.phases[0].rss_peak as f64) / MIB,
        nl,
        nt,
        ol,
        ot
    );
    s
}
