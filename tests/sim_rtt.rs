//! Issue 12's round-trip work on the simulator's WAN model: 0-RTT on first contact (what
//! rides in IK message 1), the QUIC what-if, per-contact timeouts from measured round-trip
//! times, and lookups that do not wait on stragglers.

use peer::core::{Op, OpResult, ABANDON_MIN_US};
use peer::sim::{Coord, CpuCosts, PeerConfig, Sim, Transport, WanConfig};

fn wan(n: usize, seed: u64, transport: Transport) -> Sim {
    Sim::with_wan(n, seed, PeerConfig::default(), WanConfig { cpu: CpuCosts::ZERO, transport })
}

/// Peer 0 knows peer 2 only by a reply naming it (not introduced, no connection): a lookup
/// asking it sends the `iam` and the request together. Over TCP both ride in IK message 1
/// (TCP's round trip, then one); in the QUIC what-if there is no TCP round trip (one round
/// trip in all).
#[test]
fn a_cold_contact_costs_what_its_transport_charges() {
    for (transport, trips) in [(Transport::Tcp, 2), (Transport::Quic, 1)] {
        let mut sim = wan(3, 5, transport);
        sim.connect(1, 2);
        sim.connect(0, 1);
        sim.advance(10_000_000);
        let (r01, r02) = (sim.rtt_us(0, 1), sim.rtt_us(0, 2));
        let target = sim.contact(2).id;
        let (t, r) = sim.run_timed(0, Op::FindNodes { target });
        assert!(matches!(r, OpResult::Nodes { .. }), "{r:?}");
        assert_eq!(t, r01 + trips * r02, "{transport:?}");
    }
}

/// Twelve peers 50 ms apart, each knowing all the others.
fn clique(seed: u64) -> Sim {
    let mut sim = wan(12, seed, Transport::Tcp);
    for i in 0..sim.len() {
        sim.set_coord(i, Coord { x: 0.0, y: 0.0, height: 25.0 });
    }
    for i in 0..sim.len() {
        for j in 0..sim.len() {
            if i != j {
                let c = sim.contact(j);
                sim.peers[i].add_contact(c, 0);
            }
        }
        while sim.peers[i].poll_transmit().is_some() {}
    }
    sim
}

/// Once a peer has measured its contacts (a lookup that asked them all), a contact that
/// died costs its RTO, not the old fixed second: here a warm contact's RTO, at its floor.
#[test]
fn a_dead_measured_contact_costs_its_rto() {
    let mut sim = clique(8);
    let key = sim.contact(11).id;
    let r = sim.run(0, Op::FindNodes { target: key });
    assert!(matches!(r, OpResult::Nodes { ref contacts, .. } if contacts.len() == 11), "{r:?}");
    sim.stop(11);
    sim.trace(Some(0));
    let t0 = sim.now;
    let c = sim.start(0, Op::Ref { key });
    let r = sim.run_until(c);
    assert!(matches!(r, OpResult::Value(None)), "{r:?}");
    // Measured: a 50 ms path, one sample, so an RTO of 150 ms, on a warm connection; the
    // floor is 200 ms.
    assert_eq!(sim.now - t0, ABANDON_MIN_US);
    let path = sim.take_path(c).unwrap();
    assert!(path.abandon_us > 0, "{path:?}");
}

/// A set's store goes to a candidate named by a reply along with the lookup's request to
/// it, so it costs no round trip of its own: peer 0 (5 ms access) knows peer 1 (5 ms) on an
/// open connection, peer 1 knows peer 2 (50 ms). The lookup asks 1, learns of 2 and asks it
/// (TCP + IK, the `iam`, `peers` and `set` all in message 1); only the store to peer 1, one
/// of peer 0's own contacts, waits for the lookup's end: r01 + 2 r02 + r01, not
/// r01 + 2 r02 + r02.
#[test]
fn a_small_set_stores_early_to_a_candidate_named_late() {
    let mut sim = wan(3, 5, Transport::Tcp);
    for (i, h) in [5.0, 5.0, 50.0].into_iter().enumerate() {
        sim.set_coord(i, Coord { x: 0.0, y: 0.0, height: h });
    }
    sim.connect(1, 2);
    sim.connect(0, 1);
    sim.advance(10_000_000);
    let (r01, r02) = (sim.rtt_us(0, 1), sim.rtt_us(0, 2));
    assert_eq!((r01, r02), (10_000, 55_000));
    let (t, r) = sim.run_timed(0, Op::Set { value: vec![7u8; 100].into() });
    assert!(matches!(r, OpResult::Key(_)), "{r:?}");
    assert_eq!(t, r01 + 2 * r02 + r01);
    // Both hold it.
    let (t, r) = sim.run_timed(2, Op::Ref { key: peer::Id::hash(&[7u8; 100]) });
    assert!(matches!(r, OpResult::Value(Some(_))), "{r:?}");
    assert_eq!(t, 0, "peer 2 holds it itself");
}
