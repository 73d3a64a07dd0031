//! The WAN model's connections: one per ordered pair (dialer, acceptor), since requests flow
//! dialer to acceptor only (PROTOCOL.md §3). They are opened, kept and closed by the built-in
//! transport's own rules, called here rather than described again: `net::policy` says how
//! many each direction may hold, which idle connection makes room, and how long an idle one
//! stays open. The simulator (`mod.rs`) decides what each step costs in time; this module
//! keeps the table.
//!
//! Where the model is simpler than `Net` (each a difference of microseconds or of cases that
//! do not arise here):
//! - A close reaches the other side at once, except an acceptor's eviction: its dialer learns
//!   one one-way delay later, and a request sent meanwhile is sent again on a new connection
//!   from then on (the transport's retry of a request on a reused idle connection).
//! - An acceptor answers each request as it is read (as the simulated core does), so its
//!   connections are idle between events, as `Net`'s are once the loop has answered; it does
//!   not evict a connection its dialer has a request on the way on.
//! - Each simulated peer is a host of its own: no process-wide descriptor budget, and one
//!   connection per remote address, so `from_source` is 1.
//! - The acceptor never closes for idleness: its limit is longer than its dialer's.
//!
//! A connection is marked as going to a routing contact as `net` marks it: by its latest
//! request (`core::Transmit::contact`) and by the routing table's joins and leaves
//! (`Core::take_contact_changes`). `warm` opens connections without modelling their
//! handshakes, to start a network as one whose peers have kept their contacts connected.

use crate::consts::{IDLE_TIMEOUT_US, REQUEST_TIMEOUT_US};
use crate::net::policy::{self, Candidate, Room};
use crate::wire::Request;
use std::collections::HashMap;
use std::time::Duration;

/// A request waiting for the handshake's message 2 (all of them in XX, the first riding in
/// message 3; all but the first in IK), with what the simulator carries along with it (`T`).
pub struct Held<T> {
    pub token: u64,
    pub request: Request,
    pub trip: T,
}

/// One connection, both ends.
pub struct Link<T> {
    /// Tells this connection from a later one between the same peers.
    pub serial: u64,
    /// The dialer has read message 2.
    pub open: bool,
    pub held: Vec<Held<T>>,
    /// Requests sent on it and not answered yet (tokens, oldest first).
    pub pending: Vec<u64>,
    /// Dialer: got a reply. Acceptor: answered a request.
    pub out_useful: bool,
    pub in_useful: bool,
    pub out_last: u64,
    pub in_last: u64,
    /// In the acceptor's list (its message 1 arrived and found room).
    accepted: bool,
    /// It goes to a routing contact of the dialer's, as its latest request or the dialer's
    /// latest routing-table change said.
    pub contact: bool,
    /// The acceptor closed it (to make room) at this time; the dialer does not know yet.
    pub closed_at: Option<u64>,
}

impl<T> Link<T> {
    /// Requests on it or waiting for it (the in-flight bound counts both).
    pub fn load(&self) -> usize {
        self.pending.len() + self.held.len()
    }

    /// Nothing waits on it at the dialer's end.
    fn idle(&self) -> bool {
        self.open && self.load() == 0
    }

    /// The dialer closed it for idleness by `now`.
    fn expired(&self, now: u64) -> bool {
        self.idle() && now >= self.out_last + dialer_idle_limit(self.contact)
    }
}

/// How long the dialer keeps an idle connection (`policy::idle_limit`).
fn dialer_idle_limit(contact: bool) -> u64 {
    let (idle, rto) = (Duration::from_micros(IDLE_TIMEOUT_US), Duration::from_micros(REQUEST_TIMEOUT_US));
    policy::idle_limit(true, contact, true, idle, rto).as_micros() as u64
}

/// What the dialer has to `to` at the moment it sends.
pub enum Found {
    /// An open connection.
    Open,
    /// One whose handshake runs: the request waits for message 2.
    Opening,
    /// None: dial, from `at` on (later than now when the acceptor's close is still on its way).
    None { at: Option<u64> },
}

/// Counts of what the connections did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections dialed with IK (the key known) and with XX.
    pub dials_ik: u64,
    pub dials_xx: u64,
    /// Handshakes completed (message 2 read by the dialer).
    pub handshakes: u64,
    /// Dials to a peer that never answered (closed at the request timeout).
    pub dead_dials: u64,
    /// Requests sent on an open connection, and held for a handshake under way.
    pub warm: u64,
    pub held: u64,
    /// Idle connections closed to make room, by the dialer and by the acceptor.
    pub evicted_out: u64,
    pub evicted_in: u64,
    /// Newcomers refused by a full acceptor; requests that failed on a full dialer.
    pub refused: u64,
    pub full: u64,
    /// Requests sent again because the acceptor had closed their connection.
    pub retried: u64,
    /// Connections closed after `IDLE_TIMEOUT_US` unused.
    pub idle_closed: u64,
}

/// Every connection, and each peer's lists of them (dialed, accepted).
pub struct Links<T> {
    map: HashMap<(u32, u32), Link<T>>,
    out: Vec<Vec<u32>>,
    inn: Vec<Vec<u32>>,
    /// Connections each peer dialed so far.
    dialed: Vec<u64>,
    next_serial: u64,
    /// When `tidy` next forgets the connections closed for idleness.
    next_tidy: u64,
    pub stats: LinkStats,
}

impl<T> Default for Links<T> {
    fn default() -> Self {
        let (map, out, inn) = (HashMap::new(), Vec::new(), Vec::new());
        Links { map, out, inn, dialed: Vec::new(), next_serial: 0, next_tidy: 0, stats: LinkStats::default() }
    }
}

fn key(a: usize, b: usize) -> (u32, u32) {
    (a as u32, b as u32)
}

fn unlist(v: &mut Vec<u32>, x: usize) {
    if let Some(i) = v.iter().position(|&y| y as usize == x) {
        v.swap_remove(i);
    }
}

impl<T> Links<T> {
    pub fn add_peer(&mut self) {
        self.out.push(Vec::new());
        self.inn.push(Vec::new());
        self.dialed.push(0);
    }

    /// Connections peer `p` dialed so far.
    pub fn dialed(&self, p: usize) -> u64 {
        self.dialed[p]
    }

    /// (dialed, accepted) connections of peer `p`, whatever their state.
    pub fn counts(&self, p: usize) -> (usize, usize) {
        (self.out[p].len(), self.inn[p].len())
    }

    /// The connection `a` dialed to `b`, if it is the one numbered `serial`.
    pub fn get(&mut self, a: usize, b: usize, serial: u64) -> Option<&mut Link<T>> {
        self.map.get_mut(&key(a, b)).filter(|l| l.serial == serial)
    }

    /// The connection `a` dialed to `b`, whichever it is.
    pub fn get_any(&mut self, a: usize, b: usize) -> Option<&mut Link<T>> {
        self.map.get_mut(&key(a, b))
    }

    /// Take a connection out of both ends' lists.
    pub fn remove(&mut self, a: usize, b: usize) -> Option<Link<T>> {
        let l = self.map.remove(&key(a, b))?;
        unlist(&mut self.out[a], b);
        if l.accepted && l.closed_at.is_none() {
            unlist(&mut self.inn[b], a);
        }
        Some(l)
    }

    /// What `a` finds to `b` at `now`, to send a request to a routing contact or not
    /// (`contact`, which marks the connection found); `one_way` is their delay. A connection
    /// closed meanwhile (idle, or by the acceptor and heard of) is forgotten.
    pub fn find(&mut self, a: usize, b: usize, now: u64, one_way: u64, contact: bool) -> Found {
        let Some(l) = self.map.get(&key(a, b)) else { return Found::None { at: None } };
        if let Some(c) = l.closed_at {
            self.remove(a, b);
            let heard = c + one_way;
            if now < heard {
                self.stats.retried += 1;
                return Found::None { at: Some(heard) };
            }
            return Found::None { at: None };
        }
        if l.expired(now) {
            self.remove(a, b);
            self.stats.idle_closed += 1;
            return Found::None { at: None };
        }
        let l = self.map.get_mut(&key(a, b)).expect("found above");
        l.contact = contact;
        if l.open {
            Found::Open
        } else {
            Found::Opening
        }
    }

    /// `a` dials `b` at `now` (to a routing contact: `contact`): a new connection if the
    /// dialing side has room (after closing an idle one if `policy` says so), None if it is
    /// full.
    pub fn dial(&mut self, a: usize, b: usize, now: u64, ik: bool, contact: bool) -> Option<&mut Link<T>> {
        if self.out[a].len() >= policy::cap(true) {
            self.sweep_out(a, now);
        }
        let own = || {
            let idle = self.out[a].iter().filter_map(|&b| {
                let l = &self.map[&(a as u32, b)];
                l.idle().then_some(Candidate {
                    id: u64::from(b),
                    outbound: true,
                    contact: l.contact,
                    useful: l.out_useful,
                    last_active: l.out_last,
                    from_source: 0,
                    unsent: false,
                })
            });
            policy::victim(idle, now, false)
        };
        let room = policy::room(true, self.out[a].len(), false, own, || None);
        match room {
            Room::Free => {}
            Room::Evict(v) => {
                self.remove(a, v as usize);
                self.stats.evicted_out += 1;
            }
            Room::Full => {
                self.stats.full += 1;
                return None;
            }
        }
        self.dialed[a] += 1;
        if ik {
            self.stats.dials_ik += 1;
        } else {
            self.stats.dials_xx += 1;
        }
        self.next_serial += 1;
        let l = Link {
            serial: self.next_serial,
            open: false,
            held: Vec::new(),
            pending: Vec::new(),
            out_useful: false,
            in_useful: false,
            out_last: now,
            in_last: now,
            accepted: false,
            closed_at: None,
            contact,
        };
        self.out[a].push(b as u32);
        Some(self.map.entry(key(a, b)).or_insert(l))
    }

    /// Every connection closed for idleness by `now` is forgotten, once per idle timeout
    /// (the others are found closed when next used; this bounds the memory they hold).
    pub fn tidy(&mut self, now: u64) {
        if now < self.next_tidy {
            return;
        }
        self.next_tidy = now + IDLE_TIMEOUT_US;
        let mut gone: Vec<(u32, u32)> = self.map.iter().filter(|(_, l)| l.expired(now)).map(|(k, _)| *k).collect();
        // In a fixed order, so the lists (and the victims they offer) are the same every run.
        gone.sort_unstable();
        for (a, b) in gone {
            self.remove(a as usize, b as usize);
            self.stats.idle_closed += 1;
        }
        if self.map.capacity() > 4 * self.map.len() + 1024 {
            self.map.shrink_to(2 * self.map.len());
        }
    }

    /// The dialer's connections it closed for idleness by `now`, forgotten.
    fn sweep_out(&mut self, a: usize, now: u64) {
        let gone: Vec<u32> = self.out[a].iter().copied().filter(|&b| self.map[&(a as u32, b)].expired(now)).collect();
        for b in gone {
            self.remove(a, b as usize);
            self.stats.idle_closed += 1;
        }
    }

    /// `b` accepts `a`'s connection (its message 1 arrived at `now`): true if there is room
    /// among its accepted connections (after closing an idle one if `policy` says so); false
    /// if it is full and closes the newcomer.
    pub fn accept(&mut self, a: usize, b: usize, now: u64) -> bool {
        if self.inn[b].len() >= policy::cap(false) {
            let gone: Vec<u32> =
                self.inn[b].iter().copied().filter(|&d| self.map[&(d, b as u32)].expired(now)).collect();
            for d in gone {
                self.remove(d as usize, b);
                self.stats.idle_closed += 1;
            }
        }
        let own = || {
            let idle = self.inn[b].iter().filter_map(|&d| {
                let l = &self.map[&(d, b as u32)];
                (l.load() == 0).then_some(Candidate {
                    id: u64::from(d),
                    outbound: false,
                    contact: false,
                    useful: l.in_useful,
                    last_active: l.in_last,
                    from_source: 1,
                    unsent: false,
                })
            });
            policy::victim(idle, now, true)
        };
        let room = policy::room(false, self.inn[b].len(), false, own, || None);
        match room {
            Room::Free => {}
            Room::Evict(d) => {
                let d = d as usize;
                unlist(&mut self.inn[b], d);
                if let Some(l) = self.map.get_mut(&key(d, b)) {
                    l.closed_at = Some(now);
                }
                self.stats.evicted_in += 1;
            }
            Room::Full => {
                // Never in the acceptor's list; the dialer's requests fail when it hears.
                self.stats.refused += 1;
                return false;
            }
        }
        if let Some(l) = self.map.get_mut(&key(a, b)) {
            l.accepted = true;
            self.inn[b].push(a as u32);
        }
        true
    }

    /// `b` joined (`contact`) or left `a`'s routing table: mark `a`'s connection to it.
    pub fn mark(&mut self, a: usize, b: usize, contact: bool) {
        if let Some(l) = self.map.get_mut(&key(a, b)) {
            l.contact = contact;
        }
    }

    /// An open connection from `a` to its routing contact `b` at `now`, as if it had been
    /// used then, if both sides have room under the same rules (its handshake and the room
    /// made are not counted in `stats`); false if there was none or one was there already.
    pub fn warm(&mut self, a: usize, b: usize, now: u64) -> bool {
        if self.map.contains_key(&key(a, b)) {
            return false;
        }
        let (stats, dialed) = (self.stats, self.dialed[a]);
        let mut ok = self.dial(a, b, now, true, true).is_some();
        if ok && !self.accept(a, b, now) {
            self.remove(a, b);
            ok = false;
        }
        if let Some(l) = self.map.get_mut(&key(a, b)) {
            (l.open, l.out_useful, l.in_useful) = (true, true, true);
        }
        (self.stats, self.dialed[a]) = (stats, dialed);
        ok
    }
}
