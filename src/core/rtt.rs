//! Round-trip times measured per contact, and the marks a request takes from them (issue 12):
//! TCP's retransmission timer (RFC 6298: SRTT, RTTVAR, RTO = SRTT + 4 RTTVAR within bounds),
//! as Jimenez, Osmani and Knutsson ("Sub-second lookups on a large-scale Kademlia-based
//! overlay", 2011) applied it to Kademlia's fixed timeouts.
//!
//! Each request gets three marks (`Marks`), from the contact's smoothed path RTT (SRTT)
//! times the round trips the request costs: at its *straggler* mark, a quarter of the time its
//! reply is due (`SLOT_SHARE`), it stops holding one of the lookup's ALPHA slots, so a lookup
//! starts up to ALPHA requests per quarter round trip (measured on the WAN model: waiting the
//! whole round trip for a slot made refs 25% slower, a quarter is as fast as the old fixed
//! 30 ms mark with no more requests); when its reply is *due* (SRTT) it no longer holds a place
//! among the `want` nearest, so the lookup asks the next candidate rather than wait on it; at
//! its *abandon* mark (its RTO) the lookup may finish without it. Its late reply still
//! counts whenever it comes.
//!
//! - A request to a contact without a warm connection costs more round trips: TCP's, then
//!   Noise IK's message 1 carrying it (`COLD_TRIPS`). The core does not see connections, so
//!   it guesses: a contact that answered within `WARM_US` (the transport's idle timeout) has
//!   one. Samples are divided by the round trips guessed, so the estimates are of the path.
//! - A contact never measured takes the network's estimate: the same estimator run over
//!   every sample this peer took (what its network has shown so far); before `MIN_SAMPLES`
//!   of those, the fixed marks of old (`STRAGGLER_US`, `ABANDON_US`).
//! - Bounds: the straggler and due marks are at least `STRAGGLER_US` (30 ms, the old fixed
//!   mark: far above any loopback or LAN round trip, so there nothing changes); the abandon
//!   mark lies between `ABANDON_MIN_US` (200 ms, as Linux's minimum RTO: a late reply on a
//!   loaded machine is not given up on) and `ABANDON_US` (1 s, the old fixed mark: no
//!   contact is waited for longer than before).
//! - Memory is bounded: `MAX_CONTACTS` entries (the routing table's contacts and those met
//!   lately); the least recently heard makes room.

use crate::consts::IDLE_TIMEOUT_US;
use crate::id::Id;
use std::collections::HashMap;

/// A request in flight longer than this no longer holds one of a lookup's ALPHA slots: the
/// straggler mark before the network has measured anything, and its floor.
pub const STRAGGLER_US: u64 = 30_000;
/// A request in flight longer than this no longer keeps its lookup from finishing, as long
/// as enough other candidates answered: the abandon mark before the network has measured
/// anything, and its ceiling.
pub const ABANDON_US: u64 = 1_000_000;

/// Contacts whose round-trip time is kept at most (about 4 KiB when full: W1 at 300 peers
/// in one process measured 3.7 KiB more per idle peer with 256 entries of 24 bytes).
const MAX_CONTACTS: usize = 128;
/// A contact that answered this recently is taken to have a warm connection.
const WARM_US: u64 = IDLE_TIMEOUT_US;
/// Round trips a request to a contact without a warm connection costs: TCP's, then IK
/// message 1 carrying the request (and message 2 with the reply).
pub const COLD_TRIPS: u64 = 2;
/// The smallest abandon mark.
pub const ABANDON_MIN_US: u64 = 200_000;
/// A request stops holding a lookup slot after this share of the time its reply is due.
const SLOT_SHARE: u64 = 4;
/// Samples the network's estimate needs before it replaces the fixed marks.
const MIN_SAMPLES: u32 = 8;
/// A sample longer than this (a reply after the request timeout cannot arrive) is cut.
const MAX_SAMPLE_US: u64 = 5_000_000;

/// When a request stops holding a lookup slot (`straggle`), when its reply is due and it
/// stops holding a place among the nearest (`due`), and when its lookup stops waiting for it
/// (`abandon`): absolute times (µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marks {
    pub straggle: u64,
    pub due: u64,
    pub abandon: u64,
    /// Sent without a warm connection, as far as the core can tell.
    pub cold: bool,
}

/// RFC 6298's estimator: smoothed RTT and its mean deviation (µs).
#[derive(Clone, Copy, Debug, Default)]
struct Estimate {
    srtt: u32,
    rttvar: u32,
}

impl Estimate {
    fn first(r: u64) -> Estimate {
        Estimate { srtt: r as u32, rttvar: (r / 2) as u32 }
    }

    /// RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, then SRTT = 7/8 SRTT + 1/8 R.
    fn update(&mut self, r: u64) {
        let (s, v) = (u64::from(self.srtt), u64::from(self.rttvar));
        self.rttvar = ((3 * v + s.abs_diff(r)) / 4) as u32;
        self.srtt = ((7 * s + r) / 8) as u32;
    }

    fn rto(&self) -> u64 {
        u64::from(self.srtt) + 4 * u64::from(self.rttvar)
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    est: Estimate,
    /// When it last answered, in milliseconds, wrapping (compared by `since`).
    heard_ms: u32,
}

fn ms(t: u64) -> u32 {
    (t / 1000) as u32
}

/// Microseconds from `then` (wrapping milliseconds) to `now`, exact to the millisecond for
/// 49 days; older looks recent again, which only costs a cold request its warm marks.
fn since(then: u32, now: u64) -> u64 {
    u64::from(ms(now).wrapping_sub(then)) * 1000
}

/// One peer's round-trip times: per contact, and over all its samples.
#[derive(Default)]
pub(crate) struct Rtt {
    /// By the uid's first 4 bytes (a collision only mixes two estimates).
    contacts: HashMap<u32, Entry>,
    network: Estimate,
    samples: u32,
}

fn key(id: &Id) -> u32 {
    u32::from_le_bytes(id.0[..4].try_into().unwrap_or_default())
}

impl Rtt {
    /// The marks of a request sent to `id` at `now`.
    pub fn marks(&self, id: &Id, now: u64) -> Marks {
        let e = self.contacts.get(&key(id));
        let cold = e.is_none_or(|e| since(e.heard_ms, now) >= WARM_US);
        let est = match e {
            Some(e) => e.est,
            None if self.samples >= MIN_SAMPLES => self.network,
            None => return Marks { straggle: now + STRAGGLER_US, due: now + STRAGGLER_US, abandon: now + ABANDON_US, cold },
        };
        let trips = if cold { COLD_TRIPS } else { 1 };
        let due = (trips * u64::from(est.srtt)).clamp(STRAGGLER_US, ABANDON_US);
        let straggle = (due / SLOT_SHARE).max(STRAGGLER_US);
        let abandon = (trips * est.rto()).clamp(ABANDON_MIN_US, ABANDON_US).max(due);
        Marks { straggle: now + straggle, due: now + due, abandon: now + abandon, cold }
    }

    /// `id` answered at `now` a request sent at `sent` (`cold`: as `marks` said then).
    pub fn sample(&mut self, id: &Id, sent: u64, cold: bool, now: u64) {
        let trips = if cold { COLD_TRIPS } else { 1 };
        let r = (now.saturating_sub(sent).min(MAX_SAMPLE_US) / trips).max(1);
        match self.contacts.get_mut(&key(id)) {
            Some(e) => {
                e.est.update(r);
                e.heard_ms = ms(now);
            }
            None => {
                if self.contacts.len() >= MAX_CONTACTS {
                    self.forget_oldest(now);
                }
                self.contacts.insert(key(id), Entry { est: Estimate::first(r), heard_ms: ms(now) });
            }
        }
        if self.samples == 0 {
            self.network = Estimate::first(r);
        } else {
            self.network.update(r);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The least recently heard goes (at `now`; ties by key, so the choice is deterministic).
    fn forget_oldest(&mut self, now: u64) {
        let oldest = self.contacts.iter().max_by_key(|(k, e)| (since(e.heard_ms, now), std::cmp::Reverse(**k)));
        if let Some(k) = oldest.map(|(k, _)| *k) {
            self.contacts.remove(&k);
        }
    }

    /// How fast `id` answers, for choosing among equally near candidates: its smoothed
    /// path RTT, or None if never measured.
    pub fn srtt(&self, id: &Id) -> Option<u64> {
        self.contacts.get(&key(id)).map(|e| u64::from(e.est.srtt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    /// Before the network has shown anything, the old fixed marks; a measured contact's
    /// marks follow RFC 6298 (one sample R: SRTT = R, RTO = 3R), doubled while its
    /// connection is cold, within the bounds.
    #[test]
    fn marks_follow_the_measured_round_trips() {
        let mut r = Rtt::default();
        let m = r.marks(&id(1), 1000);
        let old = Marks { straggle: 1000 + STRAGGLER_US, due: 1000 + STRAGGLER_US, abandon: 1000 + ABANDON_US, cold: true };
        assert_eq!(m, old);
        // A cold request answered after 320 ms: a path RTT of 160 ms.
        r.sample(&id(1), 0, true, 320_000);
        assert_eq!(r.srtt(&id(1)), Some(160_000));
        let warm = r.marks(&id(1), 400_000);
        assert!(!warm.cold);
        assert_eq!((warm.straggle, warm.due, warm.abandon), (400_000 + 40_000, 400_000 + 160_000, 400_000 + 480_000));
        let later = 320_000 + WARM_US;
        let cold = r.marks(&id(1), later);
        assert!(cold.cold);
        assert_eq!((cold.straggle, cold.due, cold.abandon), (later + 80_000, later + 320_000, later + 960_000));
        // A loopback contact: the floors.
        r.sample(&id(2), 0, true, 200);
        let m = r.marks(&id(2), 1000);
        assert_eq!((m.straggle, m.due, m.abandon), (1000 + STRAGGLER_US, 1000 + STRAGGLER_US, 1000 + ABANDON_MIN_US));
    }

    /// Unmeasured contacts take the network's estimate once it has enough samples.
    #[test]
    fn unknown_contacts_take_the_networks_estimate() {
        let mut r = Rtt::default();
        for i in 0..MIN_SAMPLES as u8 {
            r.sample(&id(10 + i), 0, false, 100_000);
        }
        let m = r.marks(&id(99), 0);
        assert!(m.cold);
        // SRTT 100 ms, RTTVAR decayed from 50 ms: cold, 2 x SRTT and 2 x RTO.
        assert_eq!((m.straggle, m.due), (50_000, 200_000));
        assert!(m.abandon > 200_000 && m.abandon < 2 * 300_000, "{m:?}");
    }

    /// The table keeps at most `MAX_CONTACTS`, forgetting the least recently heard.
    #[test]
    fn bounded_memory() {
        let mut r = Rtt::default();
        for i in 0..(MAX_CONTACTS as u64 + 10) {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&i.to_le_bytes());
            r.sample(&Id(b), 1000 * i, false, 1000 * i + 1000);
        }
        assert_eq!(r.contacts.len(), MAX_CONTACTS);
        assert_eq!(r.srtt(&Id([0; 32])), None, "the oldest went");
    }
}
