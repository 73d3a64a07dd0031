//! Durability on a simulated network of 1,000 peers (virtual clock, no sockets): values stay
//! readable while peers leave, in waves, all at once and by steady churn, and a value whose
//! publisher is gone expires after its lifetime. Figures print with `--nocapture`.

use peer::core::{Core, CoreConfig, MaintenanceCounters, Op, OpResult};
use peer::sim::{PeerConfig, Sim};
use peer::store::{Limits, MemStore};
use peer::wire::{Reply, Request};
use peer::{Contact, Id};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const HOUR: u64 = 3600 * 1_000_000;

/// A value, the peer that published it, and (once it left) when.
struct Published {
    key: Id,
    value: Vec<u8>,
    publisher: usize,
    gone_at: Option<u64>,
}

fn publish(sim: &mut Sim, rng: &mut StdRng, publisher: usize) -> Published {
    let value: Vec<u8> = (0..64).map(|_| rng.gen()).collect();
    let key = Id::hash(&value);
    match sim.run(publisher, Op::Set { value: value.clone().into() }) {
        OpResult::Key(k) => assert_eq!(k, key),
        other => panic!("set from {publisher} failed: {other:?}"),
    }
    Published { key, value, publisher, gone_at: None }
}

/// A live peer other than `not`, at random.
fn reader(sim: &Sim, rng: &mut StdRng, live: &[usize], not: usize) -> usize {
    for _ in 0..1000 {
        let i = live[rng.gen_range(0..live.len())];
        if i != not {
            debug_assert!(!sim.is_stopped(i));
            return i;
        }
    }
    panic!("no live reader");
}

fn readable(sim: &mut Sim, rng: &mut StdRng, p: &Published, live: &[usize]) -> bool {
    let from = reader(sim, rng, live, p.publisher);
    sim.run(from, Op::Ref { key: p.key }) == OpResult::Value(Some(p.value.clone().into()))
}

/// For each of `values` that cannot be read, how many live peers hold it (for the message
/// of a failed assertion).
fn unreadable(sim: &mut Sim, rng: &mut StdRng, values: &[Published], live: &[usize]) -> Vec<usize> {
    let mut lost = Vec::new();
    for v in values {
        if !readable(sim, rng, v, live) {
            lost.push(holders(sim, &v.key));
        }
    }
    lost
}

/// Live peers holding `key`, for the message of a failed assertion.
fn holders(sim: &Sim, key: &Id) -> usize {
    sim.live().into_iter().filter(|&i| sim.peers[i].store().get_value(key, sim.now).is_some()).count()
}

/// 1,000 peers (replication 5, lifetime 24 h, republish 1 h) and 500 values from 50
/// publishers that stay; returns the values and the other peers, shuffled.
fn published_network(seed: u64, rng: &mut StdRng) -> (Sim, Vec<Published>, Vec<usize>) {
    let mut sim = Sim::with_config(1000, seed, 5, 24 * HOUR, HOUR);
    sim.bootstrap_all();
    let mut order: Vec<usize> = (0..sim.len()).collect();
    order.shuffle(rng);
    let others = order.split_off(50);
    let mut values = Vec::new();
    for &p in &order {
        for _ in 0..10 {
            values.push(publish(&mut sim, rng, p));
        }
    }
    (sim, values, others)
}

fn maintenance_line(sim: &Sim) -> String {
    let m = sim.peers.iter().map(|p| p.maintenance()).fold((0, 0, 0, 0), |a, c| {
        (a.0 + c.republished, a.1 + c.restored, a.2 + c.handed_over, a.3 + c.bucket_refreshes)
    });
    format!(
        "maintenance in all: {} republished, {} re-stored, {} handed over, {} bucket refreshes; {} messages",
        m.0, m.1, m.2, m.3, sim.messages
    )
}

/// Half of the peers other than the publishers leave in waves of 10% of the network, one
/// republish interval apart: every value is readable right after every wave.
#[test]
fn values_survive_waves_of_departures() {
    let mut rng = StdRng::seed_from_u64(72);
    let (mut sim, values, mut others) = published_network(71, &mut rng);
    // 50% of the other peers, 10% of the network per wave.
    let mut to_remove = others.len() / 2;
    let mut wave = 0;
    while to_remove > 0 {
        wave += 1;
        let n = to_remove.min(sim.len() / 10);
        for i in others.drain(..n) {
            sim.stop(i);
        }
        to_remove -= n;
        let live = sim.live();
        let lost = unreadable(&mut sim, &mut rng, &values, &live);
        println!(
            "wave {wave}: {n} peers left, {} live; {}/{} values readable",
            live.len(),
            values.len() - lost.len(),
            values.len()
        );
        assert!(lost.is_empty(), "wave {wave}: values lost (live holders of each: {lost:?})");
        sim.advance(HOUR);
    }
    assert_eq!(wave, 5);
    println!("after the waves: {}", maintenance_line(&sim));
}

/// 30% of the network (all from the peers other than the publishers) leaves at once: >= 99%
/// of the values are readable at once, all after one republish interval (the publishers'
/// republish restores the replicas).
#[test]
fn values_survive_a_mass_departure() {
    let mut rng = StdRng::seed_from_u64(92);
    let (mut sim, values, others) = published_network(91, &mut rng);
    let n = sim.len() * 3 / 10;
    for &i in &others[..n] {
        sim.stop(i);
    }
    let live = sim.live();
    let at_once = values.iter().filter(|v| readable(&mut sim, &mut rng, v, &live)).count();
    sim.advance(HOUR);
    let lost = unreadable(&mut sim, &mut rng, &values, &live);
    println!(
        "30% ({n} peers) at once, {} live: {at_once}/{} readable at once, {}/{} one republish interval later; {}",
        live.len(),
        values.len(),
        values.len() - lost.len(),
        values.len(),
        maintenance_line(&sim)
    );
    assert!(at_once * 100 >= values.len() * 99, "{at_once}/{} readable at once", values.len());
    assert!(lost.is_empty(), "values lost one interval later (live holders of each: {lost:?})");
}

/// Weibull(shape 0.5, scale `SCALE_H` hours): median `SCALE_H * ln(2)^2` = 1 h, mean 2 *
/// `SCALE_H` = 4.2 h. Stutzbach & Rejaie, "Understanding churn in peer-to-peer networks"
/// (IMC 2006), measured session lengths in Gnutella, Kad and BitTorrent and found them
/// heavy-tailed (many short sessions, a few very long ones), fitted well by Weibull
/// distributions with shape well below 1 and not by the exponential; with medians around an hour.
const SHAPE: f64 = 0.5;
const SCALE_H: f64 = 1.0 / (std::f64::consts::LN_2 * std::f64::consts::LN_2);

fn hours(h: f64) -> u64 {
    (h * HOUR as f64) as u64
}

/// A fresh session: inverse of the Weibull distribution function.
fn session(rng: &mut StdRng) -> u64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    hours(SCALE_H * (-u.ln()).powf(1.0 / SHAPE))
}

/// What is left of the session of a peer seen at a random time (the network has been
/// running long before the test starts): a session length drawn in proportion to its length
/// times a uniform fraction. For shape 0.5, length-biased `(L / scale)^0.5` is Gamma(3, 1),
/// a sum of three exponentials.
fn residual_session(rng: &mut StdRng) -> u64 {
    let g: f64 = (0..3).map(|_| -rng.gen_range(f64::EPSILON..1.0f64).ln()).sum();
    hours(SCALE_H * g.powf(1.0 / SHAPE) * rng.gen::<f64>())
}

/// Churn for 24 virtual hours: 1,000 peers (replication 5, lifetime 4 h, republish 1 h),
/// each leaving after a session drawn from the Weibull distribution above (the peers of the
/// start are mid-session: `residual_session`) and replaced at once by a fresh peer that
/// joins through a random live one. 100 of the first peers publish 5 values each, and each
/// fresh peer publishes a value with probability 1/10. Publishers churn like everyone. Every
/// hour: every value whose publisher is alive is readable; every value whose publisher left
/// more than lifetime + a minute ago is not (its holders re-store it with the time left,
/// never extending it); at least 95% of those whose publisher left less than lifetime -
/// interval ago (its last republish was at most an interval before it left) are still
/// readable; no peer holds more than its store's bounds (small ones here, 8 values: a few
/// peers reach it and evict, the farthest first).
#[test]
fn a_day_of_heavy_tailed_churn() {
    const LIFETIME: u64 = 4 * HOUR;
    let limits = Limits { max_values: 8, max_value_bytes: 8 * 64, ..Limits::default() };
    let cfg = PeerConfig { lifetime_us: LIFETIME, republish_us: HOUR, limits, ..PeerConfig::default() };
    let mut sim = Sim::with_peer_config(1000, 81, cfg);
    sim.bootstrap_all();
    let mut rng = StdRng::seed_from_u64(82);
    let mut values = Vec::new();
    let mut first: Vec<usize> = (0..sim.len()).collect();
    first.shuffle(&mut rng);
    for &p in &first[..100] {
        for _ in 0..5 {
            values.push(publish(&mut sim, &mut rng, p));
        }
    }
    let mut leaves: BinaryHeap<Reverse<(u64, usize)>> =
        (0..sim.len()).map(|i| Reverse((sim.now + residual_session(&mut rng), i))).collect();
    let (m0, start) = (sim.messages, sim.now);
    let (mut departures, mut max_held) = (0usize, 0usize);
    for hour in 1..=24u64 {
        let probe_at = start + hour * HOUR;
        // Departures due before the probe, each replaced at once; bounded by the peers there
        // can be at all.
        for _ in 0..100_000 {
            let Some(&Reverse((t, i))) = leaves.peek() else { break };
            if t > probe_at {
                break;
            }
            leaves.pop();
            sim.advance(t.saturating_sub(sim.now));
            sim.stop(i);
            departures += 1;
            for v in values.iter_mut().filter(|v| v.publisher == i) {
                v.gone_at = Some(sim.now);
            }
            let fresh = sim.add_peer();
            leaves.push(Reverse((sim.now + session(&mut rng), fresh)));
            if rng.gen_ratio(1, 10) {
                values.push(publish(&mut sim, &mut rng, fresh));
            }
        }
        sim.advance(probe_at.saturating_sub(sim.now));
        let live = sim.live();
        assert_eq!(live.len(), 1000);
        let (mut alive, mut alive_read, mut orphans, mut orphans_read, mut expired, mut expired_read) =
            (0, 0, 0, 0, 0, 0);
        let mut lost = Vec::new();
        for v in &values {
            let ok = readable(&mut sim, &mut rng, v, &live);
            match v.gone_at {
                None => {
                    alive += 1;
                    alive_read += ok as usize;
                    if !ok {
                        lost.push(holders(&sim, &v.key));
                    }
                }
                Some(g) if sim.now > g + LIFETIME + 60_000_000 => {
                    expired += 1;
                    expired_read += ok as usize;
                }
                // Its last republish was up to an interval before it left: past lifetime -
                // interval it may have expired (correctly), before that it must be there.
                Some(g) if sim.now < g + LIFETIME - HOUR => {
                    orphans += 1;
                    orphans_read += ok as usize;
                }
                Some(_) => {}
            }
        }
        let held = live.iter().map(|&i| sim.peers[i].store().counts().0).max().unwrap_or(0);
        max_held = max_held.max(held);
        println!(
            "hour {hour:2}: {departures} departures so far; publisher alive: {alive_read}/{alive} readable; \
             publisher gone < lifetime - interval: {orphans_read}/{orphans} readable; gone > lifetime: \
             {expired_read}/{expired} readable; max values held by a peer {held}"
        );
        assert!(lost.is_empty(), "hour {hour}: values of live publishers lost (live holders: {lost:?})");
        assert_eq!(expired_read, 0, "hour {hour}: values outlived their lifetime");
        // Not all: with sessions this short, all the holders of a record can leave within
        // one re-store interval of each other (no test of the issue asks for these).
        assert!(orphans_read * 100 >= orphans * 95, "hour {hour}: values of departed publishers lost early");
        for &i in &live {
            let (n, bytes, _, _) = sim.peers[i].store().counts();
            assert!(n <= limits.max_values && bytes <= limits.max_value_bytes, "peer {i} holds {n} values");
        }
    }
    let gone = values.iter().filter(|v| v.gone_at.is_some()).count();
    let msgs = sim.messages - m0;
    let m = sim.live().iter().map(|&i| sim.peers[i].maintenance()).fold(MaintenanceCounters::default(), |a, c| a + c);
    println!("maintenance of the peers alive at the end: {m:?}");
    println!(
        "24 h of churn: {departures} departures and as many joins, {} values ({gone} lost their publisher), \
         max values held by a peer {max_held} (bound {}); {msgs} messages, {:.0} per peer per hour",
        values.len(),
        limits.max_values,
        msgs as f64 / 1000.0 / 24.0
    );
    assert!(departures > 2000, "the churn is heavy: {departures}");
    assert!(values.iter().any(|v| v.gone_at.is_some_and(|g| g + LIFETIME + 60_000_000 < sim.now)));
}

/// A bucket is refreshed at most once per refresh interval, even one that stays empty
/// because nobody is in its range: it used to be refreshed at every sweep (8 times an
/// interval), which was over half of all bucket refresh lookups on 1,000 peers.
#[test]
fn an_empty_bucket_is_refreshed_once_per_interval() {
    let me = Id([0; 32]);
    let mut cfg = CoreConfig::new(me, 5, Some(7000), [1; 32], 1);
    cfg.republish_us = HOUR;
    let mut core = Core::new(cfg, Box::new(MemStore::new(me)), 0);
    // The only contact shares 10 leading bits with us: buckets 0..=9 are empty, bucket 10 not.
    let mut id = [0; 32];
    id[1] = 0x20;
    let c = Contact { id: Id(id), addr: "127.0.0.2:7000".parse().unwrap(), static_key: [2; 32] };
    core.add_contact(c, 0);
    let mut now = 0;
    for _ in 0..1_000_000 {
        if now > 3 * HOUR {
            break;
        }
        while let Some(t) = core.poll_transmit() {
            // The contact answers at once: it stays in the table, and knows nobody else.
            let reply = match t.request {
                Request::Iam { .. } => Reply::Welcome { ip: c.addr.ip(), port: 7000, uid: c.id },
                _ => Reply::Peers(Vec::new()),
            };
            core.handle_reply(now, t.token, Some((reply, c.static_key)));
        }
        now = core.next_timeout().expect("a timeout").max(now + 1);
        core.handle_timeout(now);
    }
    let refreshes = core.maintenance().bucket_refreshes;
    println!("one contact, 3 h: {refreshes} bucket refreshes (11 buckets up to the contact's)");
    // At most once per interval per bucket, 11 buckets, 3 intervals (and the first sweep).
    assert!(refreshes <= 11 * 4, "{refreshes} bucket refreshes");
    assert!(refreshes >= 10 * 3, "the empty buckets are refreshed every interval: {refreshes}");
}
