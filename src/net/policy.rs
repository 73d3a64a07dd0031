//! The connection cache's policy, without I/O: how many connections each direction may hold,
//! which idle connection makes room when a direction is full (or the process's descriptors
//! run short), and how long an idle connection stays open. `Net` applies it to its sockets
//! (`table`, `run_timers`); the simulator's WAN mode applies the same functions to the
//! connections it models, so the two cannot drift apart. Time is whatever the caller counts
//! in (`Moment`: `Instant` for `Net`, virtual microseconds for the simulator).
//!
//! Eviction keeps churn from pushing out the connections that carry real traffic (issue 13).
//! Only idle connections are candidates (nothing waits on them). Among them, first those that
//! never carried a request that was answered (half-open handshakes, silent newcomers), then
//! those of the source holding the most connections, then the least recently used. For an
//! inbound newcomer, which has proved nothing yet, a connection that was useful and was used
//! within `USEFUL_GRACE_US` (with no reply left unread) is not a candidate: if only such
//! connections remain, the newcomer is refused instead.

use super::event::ConnId;
use crate::consts::{MAX_INBOUND_CONNECTIONS, MAX_OUTBOUND_CONNECTIONS, MIN_CONNECTIONS_PER_PEER, USEFUL_GRACE_US};
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

/// Whether a new connection in one direction, which holds `open` already, may open under its
/// cap and the process's descriptor budget (`exhausted`), or which idle connection must close
/// first (`victim`, asked only when a bound is reached).
pub fn room(outbound: bool, open: usize, exhausted: bool, victim: impl FnOnce() -> Option<ConnId>) -> Room {
    let max = cap(outbound);
    if open < max && !exhausted {
        return Room::Free;
    }
    match victim() {
        Some(id) => Room::Evict(id),
        None if open < max && open < MIN_CONNECTIONS_PER_PEER => Room::Free,
        None => Room::Full,
    }
}

/// How long a connection nothing waits on stays open: `idle` on the dialing side; the
/// accepting side waits one `request_timeout` longer, so the dialer, which knows whether it is
/// about to reuse the connection, is normally the one that closes.
pub fn idle_limit(outbound: bool, idle: Duration, request_timeout: Duration) -> Duration {
    if outbound {
        idle
    } else {
        idle + request_timeout
    }
}

/// What the choice looks at in one connection.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<T = Instant> {
    pub id: ConnId,
    /// Answered a request (inbound) or got a reply (outbound).
    pub useful: bool,
    pub last_active: T,
    /// Connections open in its direction from its source (IPv4 address / IPv6 /64).
    pub from_source: usize,
    /// Its dialer has not read all of its replies.
    pub unsent: bool,
}

/// The connection to close among idle `candidates`; None if there is none, or (for an inbound
/// newcomer, `protect`) if every one is protected.
pub fn victim<T: Moment>(candidates: impl Iterator<Item = Candidate<T>>, now: T, protect: bool) -> Option<ConnId> {
    let grace = Duration::from_micros(USEFUL_GRACE_US);
    candidates
        .filter(|c| !(protect && c.useful && !c.unsent && now.since(c.last_active) < grace))
        .min_by_key(|c| (c.useful, std::cmp::Reverse(c.from_source), c.last_active))
        .map(|c| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: ConnId, useful: bool, idle_s: u64, from_source: usize, now: Instant) -> Candidate {
        Candidate { id, useful, last_active: now - Duration::from_secs(idle_s), from_source, unsent: false }
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

    /// A useful connection used within the grace period is kept for a newcomer, unless its
    /// replies are not being read; our own dials may still close it.
    #[test]
    fn recently_useful_is_protected_from_newcomers() {
        let now = Instant::now() + Duration::from_secs(100);
        let warm = [cand(1, true, 2, 1, now), cand(2, true, 5, 3, now)];
        assert_eq!(victim(warm.into_iter(), now, true), None);
        assert_eq!(victim(warm.into_iter(), now, false), Some(2));
        let stuck = Candidate { unsent: true, ..warm[0] };
        assert_eq!(victim([stuck, warm[1]].into_iter(), now, true), Some(1));
        assert_eq!(victim(std::iter::empty(), now, false), None);
    }

    /// Under its cap a direction opens freely; at the cap an idle connection makes room or
    /// the newcomer is refused; with the descriptors spent, a peer still keeps a few.
    #[test]
    fn room_under_the_caps_and_the_budget() {
        let max = cap(true);
        assert_eq!(room(true, max - 1, false, || panic!("no victim needed")), Room::Free);
        assert_eq!(room(true, max, false, || Some(7)), Room::Evict(7));
        assert_eq!(room(false, cap(false), false, || None), Room::Full);
        assert_eq!(room(true, MIN_CONNECTIONS_PER_PEER - 1, true, || None), Room::Free);
        assert_eq!(room(true, MIN_CONNECTIONS_PER_PEER, true, || None), Room::Full);
        assert_eq!(room(true, 1, true, || Some(3)), Room::Evict(3));
    }

    /// The same choice on the simulator's clock (microseconds) as on `Instant`s.
    #[test]
    fn virtual_time_chooses_alike() {
        let now = 100_000_000u64;
        let at = |id, useful, idle_s: u64| Candidate { id, useful, last_active: now - idle_s * 1_000_000, from_source: 1, unsent: false };
        assert_eq!(victim([at(1, true, 2), at(2, true, 5)].into_iter(), now, true), None);
        assert_eq!(victim([at(1, true, 2), at(2, true, 5)].into_iter(), now, false), Some(2));
        assert_eq!(victim([at(1, true, 50), at(2, false, 1)].into_iter(), now, true), Some(2));
        let (idle, rto) = (Duration::from_secs(60), Duration::from_secs(5));
        assert!(idle_limit(true, idle, rto) < idle_limit(false, idle, rto), "the dialer closes first");
    }
}
