//! The connection cache's policy, without I/O: how many connections each direction may hold,
//! which idle connection makes room when a direction is full (or the process's descriptors
//! run short), and how long an idle connection stays open. `Net` applies it to its sockets
//! (`table`, `run_timers`); the simulator's WAN mode applies the same functions to the
//! connections it models, so the two cannot drift apart. Time is whatever the caller counts
//! in (`Moment`: `Instant` for `Net`, virtual microseconds for the simulator).
//!
//! Eviction keeps churn from pushing out the connections that carry real traffic (issue 13),
//! and keeps routing contacts warm (issue 12). Only idle connections are candidates (nothing
//! waits on them). Among them, first those that never carried a request that was answered
//! (half-open handshakes, silent newcomers), then the other connections that do not go to a
//! routing contact, dialed before accepted (the dialer knows whether it will reuse its own),
//! then those of the source holding the most connections, then the least recently used;
//! connections to routing contacts go last. For an inbound newcomer, which has proved
//! nothing yet, a connection that was useful and was used within `USEFUL_GRACE_US` (with no
//! reply left unread) is not a candidate: if only such connections remain in its direction,
//! the newcomer is refused instead.
//!
//! That refusal answers a peer's own cap only. The process's descriptor budget is shared by
//! every peer of the process, so when it runs short a peer closes one of its own idle
//! connections of either direction (protected ones aside), and with none opens anyway: one
//! busy peer in a process of hundreds must not become unreachable because the others hold
//! the descriptors (the budget keeps a quarter of the limit in reserve for this).
//!
//! Idle time: a dialer closes an unused connection after the idle timeout, or, if it goes to
//! a routing contact, `CONTACT_IDLE_FACTOR` times that (eviction still closes it first when
//! room is needed). An acceptor, which does not know whether it is its dialer's contact,
//! keeps a connection that answered requests one request timeout past the longer limit and
//! one that never did one request timeout past the shorter, so the dialer, which knows
//! whether it is about to reuse the connection, is normally the one that closes.

use super::event::ConnId;
use crate::consts::{CONTACT_IDLE_FACTOR, MAX_INBOUND_CONNECTIONS, MAX_OUTBOUND_CONNECTIONS, USEFUL_GRACE_US};
use std::time::{Duration, Instant};

/// A point in time as the caller counts it.
pub trait Moment: Copy + Ord {
    /// Time from `earlier` to `self`, zero if `earlier` is later.
    fn since(self, earlier: Self) -> Duration;
}

impl Moment for Instant {
    fn since(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Virtual microseconds (the simulator's clock).
impl Moment for u64 {
    fn since(self, earlier: u64) -> Duration {
        Duration::from_micros(self.saturating_sub(earlier))
    }
}

/// Whether a new connection may open.
#[derive(Debug, PartialEq, Eq)]
pub enum Room {
    Free,
    /// Once this idle connection is closed.
    Evict(ConnId),
    Full,
}

/// Connections one direction may hold.
pub fn cap(outbound: bool) -> usize {
    if outbound {
        MAX_OUTBOUND_CONNECTIONS
    } else {
        MAX_INBOUND_CONNECTIONS
    }
}

/// Whether a new connection in one direction, which holds `open` already, may open. At its
/// cap, an idle connection of that direction must close first (`own`, the `victim` among
/// them) or the newcomer is refused. Under the cap but with the process's descriptor budget
/// spent (`exhausted`), one of the peer's idle connections of either direction closes first
/// (`any`), or, with none, the newcomer opens anyway.
pub fn room(
    outbound: bool,
    open: usize,
    exhausted: bool,
    own: impl FnOnce() -> Option<ConnId>,
    any: impl FnOnce() -> Option<ConnId>,
) -> Room {
    if open >= cap(outbound) {
        return own().map_or(Room::Full, Room::Evict);
    }
    if exhausted {
        return any().map_or(Room::Free, Room::Evict);
    }
    Room::Free
}

/// How long a connection nothing waits on stays open (see the module notes): `idle` for a
/// dialer, `CONTACT_IDLE_FACTOR` times as long if it goes to a routing contact (`contact`);
/// an acceptor waits one `request_timeout` longer than the longest its dialer may, which it
/// judges by whether the connection was ever `useful`.
pub fn idle_limit(outbound: bool, contact: bool, useful: bool, idle: Duration, request_timeout: Duration) -> Duration {
    let long = idle.saturating_mul(CONTACT_IDLE_FACTOR);
    match (outbound, contact, useful) {
        (true, true, _) => long,
        (true, false, _) => idle,
        (false, _, true) => long + request_timeout,
        (false, _, false) => idle + request_timeout,
    }
}

/// What the choice looks at in one connection.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<T = Instant> {
    pub id: ConnId,
    /// Dialed by us (else accepted).
    pub outbound: bool,
    /// Dialed to a routing contact (outbound only).
    pub contact: bool,
    /// Answered a request (inbound) or got a reply (outbound).
    pub useful: bool,
    pub last_active: T,
    /// Connections open in its direction from its source (IPv4 address / IPv6 /64).
    pub from_source: usize,
    /// Its dialer has not read all of its replies.
    pub unsent: bool,
}

/// The connection to close among idle `candidates`; None if there is none, or if every one
/// is protected: with `protect` (for an inbound newcomer), accepted connections useful within
/// the grace period are not candidates.
pub fn victim<T: Moment>(candidates: impl Iterator<Item = Candidate<T>>, now: T, protect: bool) -> Option<ConnId> {
    let grace = Duration::from_micros(USEFUL_GRACE_US);
    candidates
        .filter(|c| !(protect && !c.outbound && c.useful && !c.unsent && now.since(c.last_active) < grace))
        .min_by_key(|c| (c.contact, c.useful, !c.outbound, std::cmp::Reverse(c.from_source), c.last_active))
        .map(|c| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: ConnId, useful: bool, idle_s: u64, from_source: usize, now: Instant) -> Candidate {
        let last_active = now - Duration::from_secs(idle_s);
        Candidate { id, outbound: false, contact: false, useful, last_active, from_source, unsent: false }
    }

    fn dialed(id: ConnId, contact: bool, idle_s: u64, now: Instant) -> Candidate {
        Candidate { outbound: true, contact, from_source: 0, ..cand(id, true, idle_s, 0, now) }
    }

    #[test]
    fn never_useful_then_crowded_source_then_oldest() {
        let now = Instant::now() + Duration::from_secs(100);
        let cs = [cand(1, true, 50, 1, now), cand(2, false, 1, 1, now), cand(3, false, 2, 1, now)];
        assert_eq!(victim(cs.into_iter(), now, true), Some(3), "the older of the never-useful");
        let cs = [cand(1, false, 50, 1, now), cand(2, false, 1, 5, now)];
        assert_eq!(victim(cs.into_iter(), now, true), Some(2), "the crowded source first");
        let cs = [cand(1, true, 50, 1, now), cand(2, true, 30, 1, now)];
        assert_eq!(victim(cs.into_iter(), now, true), Some(1));
    }

    /// Routing contacts go last, after accepted connections, which go after dialed ones.
    #[test]
    fn contacts_last_and_dialed_before_accepted() {
        let now = Instant::now() + Duration::from_secs(100);
        let cs = [dialed(1, true, 50, now), dialed(2, false, 1, now)];
        assert_eq!(victim(cs.into_iter(), now, false), Some(2), "the non-contact, though used later");
        let cs = [dialed(1, true, 50, now), cand(2, true, 20, 1, now)];
        assert_eq!(victim(cs.into_iter(), now, false), Some(2), "an accepted one before a contact");
        let cs = [dialed(1, false, 1, now), cand(2, true, 50, 9, now)];
        assert_eq!(victim(cs.into_iter(), now, false), Some(1), "a dialed one before an accepted one");
        let cs = [cand(1, false, 1, 1, now), dialed(2, false, 50, now)];
        assert_eq!(victim(cs.into_iter(), now, false), Some(1), "the never-useful first");
    }

    /// An accepted connection useful within the grace period is kept for a newcomer, unless
    /// its replies are not being read; our own dials may still close it, and the newcomer may
    /// close one we dialed.
    #[test]
    fn recently_useful_is_protected_from_newcomers() {
        let now = Instant::now() + Duration::from_secs(100);
        let warm = [cand(1, true, 2, 1, now), cand(2, true, 5, 3, now)];
        assert_eq!(victim(warm.into_iter(), now, true), None);
        assert_eq!(victim(warm.into_iter(), now, false), Some(2));
        let stuck = Candidate { unsent: true, ..warm[0] };
        assert_eq!(victim([stuck, warm[1]].into_iter(), now, true), Some(1));
        assert_eq!(victim([warm[0], dialed(3, true, 1, now)].into_iter(), now, true), Some(3));
        assert_eq!(victim(std::iter::empty(), now, false), None);
    }

    /// Under its cap a direction opens freely; at the cap an idle connection of its own makes
    /// room or the newcomer is refused; with the process's descriptors spent, any idle one
    /// makes room, and without one the newcomer opens anyway.
    #[test]
    fn room_under_the_caps_and_the_budget() {
        let max = cap(true);
        let none = || panic!("no victim needed");
        assert_eq!(room(true, max - 1, false, none, none), Room::Free);
        assert_eq!(room(true, max, false, || Some(7), none), Room::Evict(7));
        assert_eq!(room(false, cap(false), false, || None, none), Room::Full);
        assert_eq!(room(false, cap(false), true, || None, none), Room::Full, "the cap rules first");
        assert_eq!(room(false, 40, true, none, || Some(3)), Room::Evict(3));
        assert_eq!(room(false, 40, true, none, || None), Room::Free, "the budget never refuses");
    }

    /// A routing contact's connection outlives the idle timeout on the dialer's side, and the
    /// acceptor waits longer still for any connection that was useful.
    #[test]
    fn idle_limits() {
        let (idle, rto) = (Duration::from_secs(60), Duration::from_secs(5));
        let long = idle * CONTACT_IDLE_FACTOR;
        assert_eq!(idle_limit(true, false, true, idle, rto), idle);
        assert_eq!(idle_limit(true, true, true, idle, rto), long);
        assert_eq!(idle_limit(false, false, false, idle, rto), idle + rto, "never useful: the short limit");
        assert_eq!(idle_limit(false, false, true, idle, rto), long + rto, "the dialer closes first");
    }

    /// The same choice on the simulator's clock (microseconds) as on `Instant`s.
    #[test]
    fn virtual_time_chooses_alike() {
        let now = 100_000_000u64;
        let at = |id, useful, idle_s: u64| Candidate {
            id,
            outbound: false,
            contact: false,
            useful,
            last_active: now - idle_s * 1_000_000,
            from_source: 1,
            unsent: false,
        };
        assert_eq!(victim([at(1, true, 2), at(2, true, 5)].into_iter(), now, true), None);
        assert_eq!(victim([at(1, true, 2), at(2, true, 5)].into_iter(), now, false), Some(2));
        assert_eq!(victim([at(1, true, 50), at(2, false, 1)].into_iter(), now, true), Some(2));
    }
}
