//! One iterative lookup: a shortlist of candidates sorted by distance to the target, at most
//! ALPHA requests in flight (a request slower than STRAGGLER_US stops counting against ALPHA,
//! so one slow peer does not stall the lookup), finished when the `want` nearest candidates
//! that did not fail have all answered. The lookup only decides; the core sends and feeds.

use crate::consts::{ALPHA, K};
use crate::id::{Contact, Id};
use std::collections::HashSet;

/// A request in flight longer than this no longer holds one of the ALPHA slots.
pub const STRAGGLER_US: u64 = 30_000;
/// A request in flight longer than this no longer keeps the lookup from finishing.
pub const ABANDON_US: u64 = 1_000_000;
/// Candidates kept at most (the nearest ones).
const MAX_CANDIDATES: usize = 3 * K;
/// Distinct contacts one lookup considers at most, whatever its replies claim.
const MAX_SEEN: usize = 64 * K;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Waiting,
    InFlight(u64),
    Answered,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    contact: Contact,
    dist: Id,
    state: State,
    /// Round in which we learned of it: seeds 0, contacts named by a round-r answer r+1.
    hop: u32,
}

#[derive(Debug)]
pub struct Lookup {
    target: Id,
    want: usize,
    candidates: Vec<Candidate>,
    /// Every (uid, address, key) offered so far. Keyed by all three, not the uid alone, so a
    /// reply naming a uid at a false address cannot hide the true one named by another.
    seen: HashSet<Contact>,
    me: Id,
    /// Requests sent so far.
    pub sent: usize,
}

impl Lookup {
    /// `seeds` are our own nearest contacts; `want` how many nearest must answer.
    pub fn new(me: Id, target: Id, want: usize, seeds: Vec<Contact>) -> Lookup {
        let mut l = Lookup { target, want: want.max(1), candidates: Vec::new(), seen: HashSet::new(), me, sent: 0 };
        l.add(seeds, 0);
        l
    }

    pub fn target(&self) -> Id {
        self.target
    }

    /// Offer contacts learned in round `hop`.
    fn add(&mut self, contacts: impl IntoIterator<Item = Contact>, hop: u32) {
        let mut changed = false;
        for c in contacts {
            if c.id == self.me || self.seen.len() >= MAX_SEEN || !self.seen.insert(c) {
                continue;
            }
            self.candidates.push(Candidate {
                contact: c,
                dist: c.id.distance(&self.target),
                state: State::Waiting,
                hop,
            });
            changed = true;
        }
        if changed {
            self.candidates.sort_by_key(|a| a.dist);
            // Drop the farthest that were never asked; asked ones stay to be accounted for.
            while self.candidates.len() > MAX_CANDIDATES {
                match self.candidates.iter().rposition(|c| c.state == State::Waiting) {
                    Some(i) => {
                        self.candidates.remove(i);
                    }
                    None => break,
                }
            }
        }
    }

    /// The next contact to ask, if a slot is free and asking could still matter.
    pub fn next(&mut self, now: u64) -> Option<Contact> {
        if self.is_finished(now) {
            return None;
        }
        let busy = self
            .candidates
            .iter()
            .filter(|c| matches!(c.state, State::InFlight(t) if now.saturating_sub(t) < STRAGGLER_US))
            .count();
        if busy >= ALPHA {
            return None;
        }
        // Only candidates within the `want` nearest live ones (plus those beyond, once the
        // nearer ones are all accounted for) are worth asking.
        let mut live = 0;
        for c in self.candidates.iter_mut() {
            if c.state == State::Failed {
                continue;
            }
            if live >= self.want {
                break;
            }
            live += 1;
            if c.state == State::Waiting {
                c.state = State::InFlight(now);
                self.sent += 1;
                return Some(c.contact);
            }
        }
        None
    }

    pub fn on_answer(&mut self, from: &Contact, contacts: impl IntoIterator<Item = Contact>) {
        let mut hop = 0;
        if let Some(c) = self.candidates.iter_mut().find(|c| c.contact == *from) {
            c.state = State::Answered;
            hop = c.hop + 1;
        }
        self.add(contacts, hop);
    }

    /// Rounds of requests the lookup needed: the deepest answered candidate's round + 1.
    pub fn rounds(&self) -> u32 {
        self.candidates.iter().filter(|c| c.state == State::Answered).map(|c| c.hop + 1).max().unwrap_or(0)
    }

    pub fn on_failure(&mut self, from: &Contact) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.contact == *from) {
            c.state = State::Failed;
        }
    }

    /// True when the `want` nearest candidates that have not failed have all answered (or
    /// were abandoned as stragglers), or nobody is left to ask.
    pub fn is_finished(&self, now: u64) -> bool {
        let mut live = 0;
        for c in &self.candidates {
            match c.state {
                State::Failed => continue,
                State::Answered => {}
                State::InFlight(t) if now.saturating_sub(t) >= ABANDON_US => continue,
                State::InFlight(_) | State::Waiting => return false,
            }
            live += 1;
            if live >= self.want {
                return true;
            }
        }
        true
    }

    /// The nearest contacts that answered, nearest first, one per uid.
    pub fn answered(&self, n: usize) -> Vec<Contact> {
        let mut out: Vec<Contact> = Vec::with_capacity(n);
        for c in self.candidates.iter().filter(|c| c.state == State::Answered) {
            if out.len() == n {
                break;
            }
            if !out.iter().any(|o| o.id == c.contact.id) {
                out.push(c.contact);
            }
        }
        out
    }

    /// The contact that answered as `id`, if one did.
    pub fn answered_by(&self, id: &Id) -> Option<Contact> {
        self.candidates.iter().find(|c| c.contact.id == *id && c.state == State::Answered).map(|c| c.contact)
    }

    pub fn find(&self, id: &Id) -> Option<Contact> {
        self.candidates.iter().find(|c| c.contact.id == *id).map(|c| c.contact)
    }
}
