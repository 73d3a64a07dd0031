//! Issue 13's attacks against 24 honest peers spread over four /24s of loopback, the
//! attacker alone in 127.0.9.0/24, each test asserting the target for its attack:
//! - victim RSS growth <= 64 MiB under unread replies and under partial frames;
//! - near-key stores and refs >= 99% during and after `iam` floods and Sybils (swallowing,
//!   answering dead contacts, silent), with nothing stored lost;
//! - honest sets >= 99% during and after a storage flood, no peer filled by the one source,
//!   and nothing stored lost;
//! - honest warm requests to the victim >= 99% under connection churn.
//!
//! Each test first checks the network was healthy before its attack, so a broken testnet
//! cannot pass for a failed (or a working) defence. The tests share one process's memory
//! (RSS is measured per process) and two cores, so they run one at a time.

use peer::attack::scenario::{run, Kind, Outcome, Setup};
use peer::attack::workload::{OpKind, Tally};
use peer::attack::{report, Params};
use std::sync::Mutex;

/// One attack at a time: RSS and CPU are the process's.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: u64 = 1024 * 1024;
/// The bound on the victim's memory under unread replies and partial frames.
const RSS_TARGET: u64 = 64 * MIB;
/// The bound on honest success during and after an attack.
const SUCCESS_TARGET: f64 = 0.99;

/// Short phases; the attack is stopped past 256 MiB of growth (the target is 64).
/// `Setup::default()` makes the peers with `testnet::honest_options()`.
fn setup(seed: u64) -> Setup {
    Setup { seed, before_s: 2.0, after_s: Some(5.0), rss_cap: 256 * MIB, ..Setup::default() }
}

fn attack(kind: Kind, seconds: f64, rate: f64, count: usize, setup: &Setup) -> Outcome {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let o = run(kind, &Params { seconds, rate, count }, setup).expect("the testnet starts");
    println!("{}", report::table(&o));
    for k in OpKind::ALL {
        let t = o.phases[0].ops.of(k);
        assert!(
            t.count() > 0 && t.success() >= 0.95,
            "before the attack, {} at {}: the testnet is not healthy",
            k.name(),
            pct(t)
        );
    }
    o
}

fn pct(t: &Tally) -> String {
    format!("{:.1}% of {}", t.success() * 100.0, t.count())
}

/// Growth of the process's RSS during the attack over the phase before it.
fn rss_growth(o: &Outcome) -> u64 {
    o.phases[1].rss_peak.saturating_sub(o.phases[0].rss_peak)
}

/// `kinds` at `SUCCESS_TARGET` or better during and after the attack.
fn assert_success(o: &Outcome, kinds: &[OpKind]) {
    for (phase, name) in [(1, "during"), (2, "after")] {
        for &k in kinds {
            let t = o.phases[phase].ops.of(k);
            assert!(t.success() >= SUCCESS_TARGET, "{} {name} the attack: {}", k.name(), pct(t));
        }
    }
}

fn assert_nothing_lost(o: &Outcome) {
    let (near_lost, near, lost, all) = o.lost;
    assert_eq!((near_lost, lost), (0, 0), "lost {near_lost} of {near} near-key values, {lost} of {all} others");
}

#[test]
fn unread_replies_keep_the_victim_within_64_mib() {
    let o = attack(Kind::Unread, 5.0, 100.0, 2, &setup(11));
    assert!(rss_growth(&o) <= RSS_TARGET, "RSS grew {} MiB", rss_growth(&o) / MIB);
}

#[test]
fn partial_frames_keep_the_victim_within_64_mib() {
    let o = attack(Kind::Partial, 5.0, 150.0, 300, &setup(12));
    assert!(rss_growth(&o) <= RSS_TARGET, "RSS grew {} MiB", rss_growth(&o) / MIB);
}

#[test]
fn iam_flood_leaves_near_key_operations_whole() {
    let o = attack(Kind::IamFlood, 5.0, 1.0, 20, &setup(13));
    assert_success(&o, &[OpKind::NearSet, OpKind::NearRef]);
    assert_nothing_lost(&o);
}

#[test]
fn swallowing_sybils_lose_nothing() {
    let o = attack(Kind::SybilSwallow, 5.0, 0.5, 20, &setup(14));
    assert_success(&o, &[OpKind::NearSet, OpKind::NearRef]);
    assert_nothing_lost(&o);
}

#[test]
fn sybils_answering_dead_contacts_lose_nothing() {
    let o = attack(Kind::SybilDead, 5.0, 0.5, 20, &setup(15));
    assert_success(&o, &[OpKind::NearSet, OpKind::NearRef]);
    assert_nothing_lost(&o);
}

#[test]
fn silent_sybils_lose_nothing() {
    let o = attack(Kind::SybilSilent, 5.0, 0.5, 20, &setup(16));
    assert_success(&o, &[OpKind::NearSet, OpKind::NearRef]);
    assert_nothing_lost(&o);
}

#[test]
fn storage_flood_leaves_honest_sets_whole() {
    let o = attack(Kind::Storage, 8.0, 0.0, 3, &setup(17));
    // Quotas per source: one attacker cannot fill a peer.
    assert_eq!(o.phases[1].full_peers, 0, "peers filled by one source");
    assert_success(&o, &[OpKind::Set, OpKind::NearSet]);
    assert_nothing_lost(&o);
}

#[test]
fn churn_leaves_warm_requests_whole() {
    let s = Setup { honest_rate: 150.0, ..setup(18) };
    let o = attack(Kind::Churn, 5.0, 1500.0, 300, &s);
    assert_success(&o, &[OpKind::Warm]);
}
