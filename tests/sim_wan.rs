//! The simulator's WAN mode (issue 12): the RTT model's distribution, what a request costs on
//! cold and warm connections (exact virtual times on a few peers), the transport's connection
//! caps, CPU queueing, dead contacts, and refs on a network with 10% dead contacts.

use peer::consts::{K, MAX_OUTBOUND_CONNECTIONS, REQUEST_TIMEOUT_US};
use peer::core::{Op, OpResult, ABANDON_US, STRAGGLER_US};
use peer::sim::{rtt_quantiles, Coord, CpuCosts, PeerConfig, Sim, WanConfig};
use peer::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn wan(n: usize, seed: u64, cpu: CpuCosts) -> Sim {
    Sim::with_wan(n, seed, PeerConfig::default(), WanConfig { cpu, ..WanConfig::default() })
}

/// Every peer at one point with this access delay: every RTT is `2 * height`.
fn same_place(sim: &mut Sim, height_ms: f32) {
    for i in 0..sim.len() {
        sim.set_coord(i, Coord { x: 0.0, y: 0.0, height: height_ms });
    }
}

/// The pairwise RTTs of the model have the median and tail the model documents (about 80 ms
/// and 400 ms), and a simulation's are stable per pair and per seed.
#[test]
fn rtt_model_has_the_documented_quantiles() {
    let mut rng = StdRng::seed_from_u64(2);
    let coords: Vec<Coord> = (0..100_000).map(|_| Coord::draw(&mut rng)).collect();
    let [p10, p50, p90, p99] = rtt_quantiles(&coords, 1_000_000, &mut rng);
    println!("RTT p10 {p10} p50 {p50} p90 {p90} p99 {p99} µs");
    assert!((75_000..=85_000).contains(&p50), "median {p50} µs");
    assert!((360_000..=440_000).contains(&p99), "p99 {p99} µs");
    assert!(p10 >= 15_000 && p10 < p50 && p50 < p90 && p90 < p99);

    // A network of 3,000: its tail rests on a few dozen slow access links, so looser.
    let sim = wan(3000, 1, CpuCosts::ZERO);
    let [_, p50, _, p99] = rtt_quantiles(sim.coords(), 300_000, &mut rng);
    assert!((70_000..=90_000).contains(&p50) && (300_000..=500_000).contains(&p99), "{p50} {p99}");
    assert_eq!(sim.rtt_us(3, 7), sim.rtt_us(7, 3));
    let again = wan(3000, 1, CpuCosts::ZERO);
    assert_eq!(again.coords(), sim.coords(), "the same seed, the same coordinates");
    assert_ne!(wan(3000, 2, CpuCosts::ZERO).coords(), sim.coords());
}

/// On two peers: `connect` (Noise XX, the key unknown) costs TCP's round trip and two more;
/// a request on the open connection one, also past the idle timeout since the connection goes
/// to a peer that joined the routing table meanwhile; past the routing contacts' longer idle
/// limit, a request to the known key (IK, riding in message 1) costs TCP's round trip and one
/// more.
#[test]
fn cold_requests_pay_the_handshake_and_warm_ones_one_round_trip() {
    let mut sim = wan(2, 3, CpuCosts::ZERO);
    let rtt = sim.rtt_us(0, 1);
    assert!(rtt > 0);
    let addr = sim.contact(1).addr;
    let (t, r) = sim.run_timed(0, Op::Connect { addr });
    assert!(matches!(r, OpResult::Done), "{r:?}");
    assert_eq!(t, 3 * rtt, "XX: connect + 2 RTT");
    let s = sim.link_stats().unwrap();
    assert_eq!((s.dials_xx, s.dials_ik), (1, 1), "ours, and peer 1 introducing itself back");

    // Peer 1 joined peer 0's routing table (it answered as itself), so the connection is
    // one to a routing contact: still open past the idle timeout. The introduction (`iam`)
    // and the `peers` request both go on it.
    assert_eq!(sim.peers[0].routing().len(), 1);
    sim.advance(peer::consts::IDLE_TIMEOUT_US + 1);
    let target = Id::random(&mut StdRng::seed_from_u64(4));
    let (t, r) = sim.run_timed(0, Op::FindNodes { target });
    assert!(matches!(r, OpResult::Nodes { .. }), "{r:?}");
    assert_eq!(t, rtt, "warm: 1 RTT");
    assert_eq!(sim.link_stats().unwrap().dials_xx, 1, "no new connection");

    // Left alone past the contacts' longer limit (maintenance sends a request now and then,
    // which restarts it), both connections close; a request to the known key then goes on a
    // new connection (IK, riding in message 1): TCP's round trip and one more.
    let limit = peer::consts::IDLE_TIMEOUT_US * u64::from(peer::consts::CONTACT_IDLE_FACTOR);
    let sent = |sim: &Sim| (0..2).map(|i| sim.peers[i].counters().requests_sent()).sum::<u64>();
    let (mut last, mut count) = (sim.now, sent(&sim));
    for _ in 0..100 {
        if sim.now > last + limit {
            break;
        }
        sim.advance(peer::consts::IDLE_TIMEOUT_US);
        if sent(&sim) != count {
            (last, count) = (sim.now, sent(&sim));
        }
    }
    assert!(sim.now > last + limit, "quiet for long enough");
    let before = sim.link_stats().unwrap();
    let (t, _) = sim.run_timed(1, Op::FindNodes { target });
    assert_eq!(t, 2 * rtt, "IK: connect + 1 RTT");
    let after = sim.link_stats().unwrap();
    assert_eq!(after.dials_ik, before.dials_ik + 1);
    assert!(after.idle_closed > before.idle_closed);
}

/// A contact met during a lookup is introduced first: the `iam` and the request both ride in
/// IK message 1 (written once TCP is up), so it costs TCP's round trip and one more.
#[test]
fn a_new_contact_costs_two_round_trips() {
    let mut sim = wan(3, 5, CpuCosts::ZERO);
    // Peer 1 knows peer 2; peer 0 knows only peer 1, on an open connection.
    sim.connect(1, 2);
    sim.connect(0, 1);
    sim.advance(10_000_000);
    let (r01, r02) = (sim.rtt_us(0, 1), sim.rtt_us(0, 2));
    let target = sim.contact(2).id;
    let (t, r) = sim.run_timed(0, Op::FindNodes { target });
    let OpResult::Nodes { contacts, .. } = r else { panic!("{r:?}") };
    assert!(contacts.iter().any(|c| c.id == sim.contact(2).id));
    assert_eq!(t, r01 + 2 * r02, "1 RTT to the warm contact, then connect + 1 RTT to the new one");
}

/// CPU: a message costs its encoding at the sender and its decoding at the receiver, and a
/// peer handles one thing at a time, so the second of two requests arriving together waits.
#[test]
fn a_busy_peer_queues() {
    let c = 10_000; // ns each way, every kind
    let cpu = CpuCosts {
        encode_request: [c; 8],
        decode_request: [c; 8],
        encode_reply: [c; 8],
        decode_reply: [c; 8],
        ik: 1_000_000,
        xx: 800_000,
    };
    let mut sim = wan(2, 3, cpu);
    same_place(&mut sim, 20.0);
    let rtt = sim.rtt_us(0, 1);
    assert_eq!(rtt, 40_000);
    let addr = sim.contact(1).addr;
    // XX: dial 1 unit (once the connect is up, as `Conn::hello`), accept 3, confirm 3,
    // finish 1 of 100 µs.
    let (t, _) = sim.run_timed(0, Op::Connect { addr });
    assert_eq!(t, 3 * rtt + 10 + 100 + 300 + 300 + 100 + 10 + 10 + 10);
    // Peer 1 introduces itself back (IK: 500 µs of peer 0's CPU); let that pass.
    sim.advance(1_000_000);
    // `iam` and `peers` leave 10 µs apart; at peer 1 the second waits for the first's
    // decoding and reply (20 µs): r + e + 2 (d + e') + d'.
    let target = Id::random(&mut StdRng::seed_from_u64(4));
    let (t, _) = sim.run_timed(0, Op::FindNodes { target });
    assert_eq!(t, rtt + 10 + 2 * 20 + 10);
}

/// A contact that no longer answers costs what the core waits: a lookup left with nothing
/// else waits for the request timeout; a read whose nearest contact is dead stops waiting for
/// it at the lookup's abandon mark once enough others have answered.
#[test]
fn dead_contacts_cost_the_timeout() {
    let mut sim = wan(2, 7, CpuCosts::ZERO);
    let c1 = sim.contact(1);
    sim.peers[0].add_contact(c1, 0);
    sim.stop(1);
    sim.trace(Some(0));
    let t0 = sim.now;
    let c = sim.start(0, Op::FindNodes { target: c1.id });
    let r = sim.run_until(c);
    assert!(matches!(r, OpResult::Nodes { ref contacts, .. } if contacts.is_empty()), "{r:?}");
    assert_eq!(sim.now - t0, REQUEST_TIMEOUT_US);
    assert_eq!(sim.link_stats().unwrap().dead_dials, 1);
    let path = sim.take_path(c).unwrap();
    // All of it waiting on the dead contact: to its straggler mark, its abandon mark, its
    // timeout (less a microsecond's timer on the way).
    assert_eq!((path.wait_us, path.round_trips), (REQUEST_TIMEOUT_US, 0), "{path:?}");
    assert_eq!((path.straggler_us, path.abandon_us), (STRAGGLER_US, ABANDON_US - STRAGGLER_US), "{path:?}");
    assert!(path.timeout_us >= REQUEST_TIMEOUT_US - ABANDON_US - 1, "{path:?}");

    let mut sim = wan(12, 8, CpuCosts::ZERO);
    same_place(&mut sim, 25.0);
    for i in 0..sim.len() {
        for j in 0..sim.len() {
            if i != j {
                let c = sim.contact(j);
                sim.peers[i].add_contact(c, 0);
            }
        }
        while sim.peers[i].poll_transmit().is_some() {}
    }
    sim.stop(11);
    let key = sim.contact(11).id;
    sim.trace(Some(0));
    let t0 = sim.now;
    let c = sim.start(0, Op::Ref { key });
    let r = sim.run_until(c);
    assert!(matches!(r, OpResult::Value(None)), "{r:?}");
    // Once the dead contact's reply is due (nothing measured yet: the old 30 ms mark) the
    // next nearest live contact is asked, and answers long before the dead one's abandon
    // mark, where the lookup ends.
    assert_eq!(sim.now - t0, ABANDON_US, "the dead nearest contact is abandoned, not waited for");
    let path = sim.take_path(c).unwrap();
    assert_eq!(path.total_us(), ABANDON_US, "{path:?}");
    assert!(path.abandon_us > 0, "{path:?}");
}

/// The dialing side keeps at most `MAX_OUTBOUND_CONNECTIONS`: past it the least recently
/// used idle connection makes room (the transport's policy, shared).
#[test]
fn outbound_connections_stay_within_the_cap() {
    let n = MAX_OUTBOUND_CONNECTIONS + 44;
    let mut sim = wan(n, 9, CpuCosts::ZERO);
    same_place(&mut sim, 5.0);
    for j in 1..n {
        assert!(matches!(sim.connect(0, j), OpResult::Done));
        assert!(sim.connections(0).0 <= MAX_OUTBOUND_CONNECTIONS);
    }
    let s = sim.link_stats().unwrap();
    assert_eq!(sim.connections(0).0, MAX_OUTBOUND_CONNECTIONS);
    assert_eq!(s.evicted_out, (n - 1 - MAX_OUTBOUND_CONNECTIONS) as u64);
    assert_eq!(s.idle_closed, 0);
}

/// `warm_contacts` connects every peer to each of its routing contacts, marked as contacts:
/// on a network small enough that every peer knows every other, a lookup then dials nobody,
/// and the connections outlive the plain idle timeout.
#[test]
fn warm_contacts_are_connected_and_kept() {
    let n = 30;
    let mut sim = wan(n, 13, CpuCosts::ZERO);
    sim.fill_tables(n, n);
    let known = sim.peers[0].routing().len();
    assert_eq!(known, n - 1, "everyone knows everyone");
    let opened = sim.warm_contacts();
    assert_eq!(opened, n * (n - 1));
    assert_eq!(sim.connections(0), (n - 1, n - 1));
    assert_eq!(sim.link_stats().unwrap(), Default::default(), "warming counts no handshake");
    assert_eq!(sim.warm_contacts(), 0, "each once");
    sim.wake();
    sim.advance(peer::consts::IDLE_TIMEOUT_US + 1);
    let target = Id::random(&mut StdRng::seed_from_u64(14));
    let before = sim.dials(0);
    assert!(matches!(sim.run(0, Op::FindNodes { target }), OpResult::Nodes { .. }));
    assert_eq!(sim.dials(0), before, "every request went on a warm connection");
}

/// On 500 peers with 10% of them stopped (their contacts do not know), every stored value
/// is found, and the traced refs' critical paths add up to their latency.
#[test]
fn refs_find_every_value_with_ten_percent_dead() {
    let n = 500;
    let mut sim = wan(n, 11, CpuCosts::ZERO);
    sim.fill_tables(8 * K, K);
    let mut rng = StdRng::seed_from_u64(12);
    let mut dead = 0;
    while dead < n / 10 {
        let i = rng.gen_range(0..n);
        if !sim.is_stopped(i) {
            sim.stop(i);
            dead += 1;
        }
    }
    let live = sim.live();
    let mut keys = Vec::new();
    for _ in 0..40 {
        let value: Vec<u8> = (0..100).map(|_| rng.gen()).collect();
        let from = live[rng.gen_range(0..live.len())];
        match sim.run(from, Op::Set { value: value.clone().into() }) {
            OpResult::Key(k) => keys.push((k, value)),
            other => panic!("set failed: {other:?}"),
        }
    }
    let mut slowest = 0;
    for (k, v) in &keys {
        let from = live[rng.gen_range(0..live.len())];
        sim.trace(Some(from));
        let t0 = sim.now;
        let c = sim.start(from, Op::Ref { key: *k });
        let r = sim.run_until(c);
        let t = sim.now - t0;
        assert!(matches!(&r, OpResult::Value(Some(got)) if got[..] == v[..]), "ref of {k:?} from {from}: {r:?}");
        let path = sim.take_path(c).expect("traced");
        assert_eq!(path.total_us(), t, "{path:?}");
        assert!(path.straggler_us + path.abandon_us + path.timeout_us <= path.wait_us, "{path:?}");
        slowest = slowest.max(t);
    }
    assert!(slowest <= REQUEST_TIMEOUT_US + ABANDON_US, "slowest ref {slowest} µs");
}
