//! The connection table: every open connection, the outbound one per address, and the counts
//! the bounds are checked against (per direction, per remote address, the memory budgets'
//! totals), kept in step as connections open, change and close; and the choice of which
//! connection to close when a bound is reached (`policy`, `memory`).
//!
//! - Open connections are bounded per direction (`MAX_INBOUND_CONNECTIONS`,
//!   `MAX_OUTBOUND_CONNECTIONS`) and by the process's descriptor budget (`budget`). When a
//!   bound is reached an idle connection makes room, chosen by `policy`: never-useful ones
//!   first (no request answered: half-open handshakes, silent newcomers), then those not to
//!   a routing contact, then those of the remote address holding the most connections, then
//!   the least recently used. At a direction's cap, for an inbound newcomer, a connection
//!   that answered requests and was used within `USEFUL_GRACE_US` is not a candidate; with
//!   none left, the newcomer is closed at accept. The process's budget never refuses one.
//! - Outbound connections to routing contacts are marked (the core says which requests go
//!   to one), for eviction and for their longer idle time.
//! - Handshakes dialed, accepted and completed are counted.
//! - Per remote address (IPv4, or IPv6 /64), `NetLimits` caps inbound connections
//!   (`MAX_INBOUND_PER_IP`) and handshakes in progress (`MAX_HANDSHAKES_PER_IP`); a
//!   connection past either is closed at accept. Loopback is exempt by default (local
//!   testnets put hundreds of peers on 127.0.0.1).

use super::budget;
use super::conn::{Conn, Meter};
use super::event::ConnId;
use super::policy::{self, Candidate, Room};
use super::limits::{NetLimits, PerSource, Source};
use super::memory::{self, Over, Totals};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(super) struct Table {
    /// Boxed: the table's empty slots then cost a pointer, not a connection.
    conns: HashMap<ConnId, Box<Conn>>,
    /// Outbound connection to each address (reused by later requests).
    by_addr: HashMap<SocketAddr, ConnId>,
    outbound: usize,
    inbound: usize,
    /// Inbound connections and handshakes per remote address, and their caps.
    per_source: PerSource,
    totals: Totals,
    /// Outbound connections whose latest request went to a routing contact.
    contacts: HashSet<ConnId>,
    handshakes: Handshakes,
}

/// Handshakes a `Net` took part in so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handshakes {
    /// Connections it dialed (each starts a handshake).
    pub dialed: u64,
    /// Connections it accepted (refused ones aside).
    pub accepted: u64,
    /// Handshakes completed, both directions.
    pub completed: u64,
}

impl Drop for Table {
    fn drop(&mut self) {
        budget::closed(self.conns.len());
    }
}

impl Table {
    pub fn new(limits: NetLimits) -> Table {
        Table {
            conns: HashMap::new(),
            by_addr: HashMap::new(),
            outbound: 0,
            inbound: 0,
            per_source: PerSource::new(limits),
            totals: Totals::default(),
            contacts: HashSet::new(),
            handshakes: Handshakes::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &Conn> {
        self.conns.values().map(|c| &**c)
    }

    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(&id).map(|c| &**c)
    }

    /// The outbound connection to `addr`, if one is open.
    pub fn to(&self, addr: SocketAddr) -> Option<ConnId> {
        self.by_addr.get(&addr).copied()
    }

    /// (unsent replies, partial input) held over all connections, in heap bytes.
    pub fn held(&self) -> (usize, usize) {
        (self.totals.replies, self.totals.input)
    }

    /// Whether the caps of `peer`'s address take one more inbound connection.
    pub fn admits(&self, peer: SocketAddr) -> bool {
        self.per_source.admits(Source::of(peer.ip()))
    }

    pub fn handshakes(&self) -> Handshakes {
        self.handshakes
    }

    /// Whether outbound connection `id` goes to a routing contact.
    pub fn is_contact(&self, id: ConnId) -> bool {
        self.contacts.contains(&id)
    }

    /// Mark (or unmark) outbound connection `id` as one to a routing contact, as its latest
    /// request says.
    pub fn mark_contact(&mut self, id: ConnId, contact: bool) {
        if contact {
            self.contacts.insert(id);
        } else if self.contacts.remove(&id) {
            shrink_set(&mut self.contacts);
        }
    }

    pub fn insert(&mut self, c: Box<Conn>) {
        if c.outbound {
            self.outbound += 1;
            self.handshakes.dialed += 1;
            self.by_addr.insert(c.peer, c.id);
        } else {
            self.inbound += 1;
            self.handshakes.accepted += 1;
            self.per_source.opened(Source::of(c.peer.ip()));
        }
        self.totals.update(Meter::default(), c.meter());
        budget::opened();
        self.conns.insert(c.id, c);
    }

    /// Take a connection out of the table (the caller closes it).
    pub fn remove(&mut self, id: ConnId) -> Option<Box<Conn>> {
        let c = self.conns.remove(&id)?;
        budget::closed(1);
        self.totals.update(c.meter(), Meter::default());
        if c.outbound {
            self.outbound -= 1;
            self.mark_contact(id, false);
            if self.by_addr.get(&c.peer) == Some(&id) {
                self.by_addr.remove(&c.peer);
            }
        } else {
            self.inbound -= 1;
            self.per_source.closed(Source::of(c.peer.ip()), !c.is_open());
        }
        shrink(&mut self.conns);
        shrink(&mut self.by_addr);
        Some(c)
    }

    /// Work on a connection, keeping the counts in step with what `f` changed in it.
    pub fn work<R>(&mut self, id: ConnId, f: impl FnOnce(&mut Conn) -> R) -> Option<R> {
        let c = self.conns.get_mut(&id)?;
        let (before, was_open) = (c.meter(), c.is_open());
        let r = f(c);
        self.totals.update(before, c.meter());
        if !was_open && c.is_open() {
            self.handshakes.completed += 1;
            if !c.outbound {
                self.per_source.handshake_done(Source::of(c.peer.ip()));
            }
        }
        Some(r)
    }

    /// Whether a new connection in one direction may open, or which idle one must close
    /// first, under the per-peer bound and the process-wide descriptor budget.
    pub fn room(&self, outbound: bool, now: Instant) -> Room {
        let mine = if outbound { self.outbound } else { self.inbound };
        // A newcomer is inbound: it may not push out recently useful inbound connections.
        let protect = !outbound;
        policy::room(
            outbound,
            mine,
            budget::exhausted(),
            || self.victim(Some(outbound), now, protect),
            || self.victim(None, now, protect),
        )
    }

    /// The idle connection of one direction (None: of either) `policy` would close.
    fn victim(&self, direction: Option<bool>, now: Instant, protect: bool) -> Option<ConnId> {
        let candidates =
            self.values().filter(|c| direction.is_none_or(|d| c.outbound == d) && c.is_idle()).map(|c| Candidate {
                id: c.id,
                outbound: c.outbound,
                contact: self.is_contact(c.id),
                useful: c.useful,
                last_active: c.last_active,
                from_source: if c.outbound { 0 } else { self.per_source.inbound(Source::of(c.peer.ip())) },
                unsent: c.unsent() > 0,
            });
        policy::victim(candidates, now, protect)
    }

    /// The connections past their deadline (`Conn::deadline`, with the idle limits `policy`
    /// gives each from `idle` and `stall`) at `now`, and when the next falls (at the latest
    /// `later`).
    pub fn expired(&self, now: Instant, later: Instant, idle: Duration, stall: Duration) -> (Vec<ConnId>, Instant) {
        let (mut expired, mut next) = (Vec::new(), later);
        for c in self.values() {
            // The limit of its own direction (`deadline` reads the one that applies).
            let limit = policy::idle_limit(c.outbound, self.is_contact(c.id), c.useful, idle, stall);
            match c.deadline(limit, limit, stall) {
                Some(d) if d <= now => expired.push(c.id),
                Some(d) => next = next.min(d),
                // Waiting on the loop's reply: look again once it could have gone idle.
                None => next = next.min(now + limit),
            }
        }
        (expired, next)
    }

    /// A connection to close because a memory budget is exceeded, and which.
    pub fn over_budget(&self) -> Option<(ConnId, Over)> {
        memory::over_budget(&self.totals, self.conns.values().map(|c| &**c))
    }
}

/// `shrink` for a set.
fn shrink_set<K: std::hash::Hash + Eq>(m: &mut HashSet<K>) {
    if m.capacity() > 4 * m.len() + 16 {
        m.shrink_to(2 * m.len());
    }
}

/// Give back most of a map's table once connections have closed (hysteresis: a map that
/// shrinks is still half empty, so it does not regrow at the next insert).
pub(super) fn shrink<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 4 * m.len() + 16 {
        m.shrink_to(2 * m.len());
    }
}
