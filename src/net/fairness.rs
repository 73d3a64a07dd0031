//! Which connection makes room when a direction is full (or the process's descriptors run
//! short), so that churn cannot push out the connections that carry real traffic (issue 13).
//!
//! Only idle connections are candidates (nothing waits on them). Among them, first those that
//! never carried a request that was answered (half-open handshakes, silent newcomers), then
//! those of the source holding the most connections, then the least recently used. For an
//! inbound newcomer, which has proved nothing yet, a connection that was useful and was used
//! within `USEFUL_GRACE_US` (with no reply left unread) is not a candidate: if only such
//! connections remain, the newcomer is refused instead.

use super::event::ConnId;
use crate::consts::USEFUL_GRACE_US;
use std::time::{Duration, Instant};

/// What the choice looks at in one connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    pub id: ConnId,
    /// Answered a request (inbound) or got a reply (outbound).
    pub useful: bool,
    pub last_active: Instant,
    /// Connections open in its direction from its source (IPv4 address / IPv6 /64).
    pub from_source: usize,
    /// Its dialer has not read all of its replies.
    pub unsent: bool,
}

/// The connection to close among idle `candidates`; None if there is none, or (for an inbound
/// newcomer, `protect`) if every one is protected.
pub(super) fn victim(candidates: impl Iterator<Item = Candidate>, now: Instant, protect: bool) -> Option<ConnId> {
    let grace = Duration::from_micros(USEFUL_GRACE_US);
    candidates
        .filter(|c| !(protect && c.useful && !c.unsent && now.saturating_duration_since(c.last_active) < grace))
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
}
