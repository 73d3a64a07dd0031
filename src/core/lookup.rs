//! One iterative lookup: a shortlist of candidates sorted by distance to the target, at most
//! ALPHA requests in flight, finished when the `want` nearest candidates that did not fail
//! have all answered. The lookup only decides; the core sends and feeds.
//!
//! Slow contacts (issue 12): each request has two marks from the contact's measured round
//! trips (`rtt`). Past its straggler mark it holds neither an ALPHA slot nor a place among the
//! `want` nearest, so the next candidate is asked instead of waiting on it; past its abandon
//! mark the lookup may finish without it. Its reply still counts whenever it comes. Among
//! waiting candidates equally near the target (the same common prefix with it: Kademlia's
//! bucket relative to the target), the one that answers fastest is asked first.
//!
//! Against Sybils (SECURITY.md): a contact named in a reply is only a candidate until it
//! answers; the `want` nearest the lookup counts (and so the holders a store goes to and the
//! peers a read asks) keep the per-set address limits of `Diversity`, so peers on one
//! address or prefix are a minority of them whatever their uids; and the candidates named by
//! responders of one prefix take at most K places of the shortlist, so one prefix naming
//! hundreds of near (and dead) contacts cannot push out the others.

use crate::consts::{ALPHA, K};
use crate::core::rtt::{Marks, Rtt};
use crate::diversity::{Diversity, Prefix, Tally};
use crate::id::{Contact, Id};
use std::collections::HashSet;
use std::net::IpAddr;

/// Candidates kept at most (the nearest ones).
const MAX_CANDIDATES: usize = 3 * K;
/// Distinct contacts one lookup considers at most, whatever its replies claim.
const MAX_SEEN: usize = 64 * K;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Waiting,
    /// Asked; its straggler and abandon marks.
    InFlight(Marks),
    Answered,
    Failed,
}

impl State {
    /// In flight and past its straggler mark at `now`.
    fn straggling(&self, now: u64) -> bool {
        matches!(self, State::InFlight(m) if now >= m.straggle)
    }

    /// In flight and past the time its reply was due at `now`.
    fn overdue(&self, now: u64) -> bool {
        matches!(self, State::InFlight(m) if now >= m.due)
    }

    /// In flight and past its abandon mark at `now`.
    fn abandoned(&self, now: u64) -> bool {
        matches!(self, State::InFlight(m) if now >= m.abandon)
    }
}

#[derive(Clone, Debug)]
struct Candidate {
    contact: Contact,
    dist: Id,
    state: State,
    /// Round in which we learned of it: seeds 0, contacts named by a round-r answer r+1.
    hop: u32,
    /// The prefix of the responder that named it (None: a seed, or an address not counted).
    via: Option<Prefix>,
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
    diversity: Diversity,
    /// Requests sent so far.
    pub sent: usize,
}

impl Lookup {
    /// `seeds` are our own nearest contacts; `want` how many nearest must answer, within
    /// the address limits of `diversity`.
    pub fn new(me: Id, target: Id, want: usize, seeds: Vec<Contact>, diversity: Diversity) -> Lookup {
        let want = want.max(1);
        let mut l = Lookup { target, want, candidates: Vec::new(), seen: HashSet::new(), me, diversity, sent: 0 };
        l.add(seeds, 0, None);
        l
    }

    /// Whether `c` may join the set counted so far in `tally` (and counts it if so).
    fn admit(&self, tally: &mut Tally, c: &Contact) -> bool {
        let d = &self.diversity;
        let ip = c.addr.ip();
        if !tally.fits(d, ip, d.ip_per_set, d.prefix_per_set(self.want)) {
            return false;
        }
        tally.add(d, ip);
        true
    }

    pub fn target(&self) -> Id {
        self.target
    }

    /// Offer contacts learned in round `hop` from a responder at `via`.
    fn add(&mut self, contacts: impl IntoIterator<Item = Contact>, hop: u32, via: Option<IpAddr>) {
        let via = via.filter(|ip| self.diversity.counts(*ip)).map(Prefix::of);
        let mut from_via = match via {
            Some(p) => self.candidates.iter().filter(|c| c.via == Some(p) && c.state == State::Waiting).count(),
            None => 0,
        };
        let mut changed = false;
        for c in contacts {
            if via.is_some() && from_via >= K {
                break;
            }
            if c.id == self.me || self.seen.len() >= MAX_SEEN || !self.seen.insert(c) {
                continue;
            }
            self.candidates.push(Candidate { contact: c, dist: c.id.distance(&self.target), state: State::Waiting, hop, via });
            from_via += 1;
            changed = true;
        }
        if changed {
            self.candidates.sort_by_key(|a| a.dist);
            // Drop the farthest that were never asked; asked ones stay to be accounted for.
            // A dropped one may come back when another reply names it again.
            while self.candidates.len() > MAX_CANDIDATES {
                match self.candidates.iter().rposition(|c| c.state == State::Waiting) {
                    Some(i) => {
                        let c = self.candidates.remove(i);
                        self.seen.remove(&c.contact);
                    }
                    None => break,
                }
            }
        }
    }

    /// The next contact to ask at `now`, if a slot is free and asking could still matter;
    /// `rtt` gives its marks and says who answers fastest.
    pub fn next(&mut self, now: u64, rtt: &Rtt) -> Option<Contact> {
        if self.is_finished(now) {
            return None;
        }
        let busy = self.candidates.iter().filter(|c| matches!(c.state, State::InFlight(_)) && !c.state.straggling(now)).count();
        if busy >= ALPHA {
            return None;
        }
        // Only candidates within the `want` nearest live ones (plus those beyond, once the
        // nearer ones are all accounted for) are worth asking; one past the address limits
        // of the set is not counted nor asked. Of the waiting ones there, those as near as
        // the nearest (the same common prefix with the target) are equals: the fastest goes.
        let mut live = 0;
        let mut tally = Tally::default();
        let mut pick: Option<(usize, usize, (bool, u64))> = None;
        for i in 0..self.candidates.len() {
            // A straggler or an abandoned request keeps no place: the next candidate is
            // asked rather than waiting for it (its reply still counts when it comes).
            let state = self.candidates[i].state;
            if state == State::Failed || state.overdue(now) {
                continue;
            }
            if live >= self.want {
                break;
            }
            if !self.admit(&mut tally, &self.candidates[i].contact) {
                continue;
            }
            live += 1;
            let c = &self.candidates[i];
            if c.state != State::Waiting {
                continue;
            }
            let prefix = c.contact.id.common_prefix(&self.target).unwrap_or(256);
            // Never measured: after the measured ones.
            let speed = rtt.srtt(&c.contact.id).map_or((true, 0), |s| (false, s));
            match pick {
                None => pick = Some((i, prefix, speed)),
                Some((_, p, _)) if p != prefix => break,
                Some((_, _, fastest)) if speed < fastest => pick = Some((i, prefix, speed)),
                Some(_) => {}
            }
        }
        let (i, _, _) = pick?;
        let c = &mut self.candidates[i];
        c.state = State::InFlight(rtt.marks(&c.contact.id, now));
        self.sent += 1;
        Some(c.contact)
    }

    pub fn on_answer(&mut self, from: &Contact, contacts: impl IntoIterator<Item = Contact>) {
        let mut hop = 0;
        if let Some(c) = self.candidates.iter_mut().find(|c| c.contact == *from) {
            c.state = State::Answered;
            hop = c.hop + 1;
        }
        self.add(contacts, hop, Some(from.addr.ip()));
    }

    /// Where `c` stands: its rank by distance among the candidates that did not fail, and
    /// the round it was learned in (seeds 0).
    pub fn place(&self, c: &Contact) -> Option<(usize, u32)> {
        let live = self.candidates.iter().filter(|x| x.state != State::Failed);
        live.enumerate().find(|(_, x)| x.contact == *c).map(|(i, x)| (i, x.hop))
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
        let mut tally = Tally::default();
        let mut abandoned = false;
        for c in &self.candidates {
            match c.state {
                State::Failed => continue,
                s if s.abandoned(now) => {
                    abandoned = true;
                    continue;
                }
                _ => {}
            }
            if !self.admit(&mut tally, &c.contact) {
                continue;
            }
            if c.state != State::Answered {
                return false;
            }
            live += 1;
            if live >= self.want {
                return true;
            }
        }
        // Fewer than `want` can answer: a slow request is all that is left, so wait for it
        // (it answers or fails at the request timeout) rather than end with nothing.
        !abandoned
    }

    /// The nearest contacts that answered, nearest first, one per uid, within the address
    /// limits of a set of `n`.
    pub fn answered(&self, n: usize) -> Vec<Contact> {
        let mut out: Vec<Contact> = Vec::with_capacity(n);
        let d = &self.diversity;
        let mut tally = Tally::default();
        for c in self.candidates.iter().filter(|c| c.state == State::Answered) {
            if out.len() == n {
                break;
            }
            let ip = c.contact.addr.ip();
            if out.iter().any(|o| o.id == c.contact.id) || !tally.fits(d, ip, d.ip_per_set, d.prefix_per_set(n)) {
                continue;
            }
            tally.add(d, ip);
            out.push(c.contact);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::REQUEST_TIMEOUT_US;
    use crate::core::rtt::{ABANDON_US, STRAGGLER_US};
    use crate::core::routing::RoutingTable;
    use crate::diversity::Diversity;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    /// A network in memory: every peer's routing table holds every other peer it has room
    /// for (complete buckets, as after a thorough bootstrap); `dead` peers fail when asked,
    /// `slow` ones never answer.
    struct Model {
        contacts: Vec<Contact>,
        tables: Vec<RoutingTable>,
        dead: Vec<bool>,
        slow: Vec<bool>,
    }

    impl Model {
        fn new(n: usize, dead: f64, slow: f64, rng: &mut StdRng) -> Model {
            let contacts: Vec<Contact> = (0..n)
                .map(|i| Contact {
                    id: Id::random(rng),
                    addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1000 + i as u16),
                    static_key: [i as u8; 32],
                })
                .collect();
            let tables = contacts
                .iter()
                .map(|me| {
                    let mut t = RoutingTable::new(me.id);
                    for c in &contacts {
                        t.insert(*c, 0);
                    }
                    t
                })
                .collect();
            // Peer 0 looks things up: it is alive and answers.
            let mut pick = |p: f64| (0..n).map(|i| i > 0 && rng.gen_bool(p)).collect::<Vec<bool>>();
            let dead = pick(dead);
            let slow = pick(slow);
            Model { contacts, tables, dead, slow }
        }

        fn index(&self, c: &Contact) -> usize {
            self.contacts.iter().position(|x| x == c).expect("a contact of the model")
        }

        /// The true `want` nearest to `target` among the peers that answer, peer 0 excluded.
        fn nearest_alive(&self, target: &Id, want: usize) -> Vec<Id> {
            let mut ids: Vec<Id> =
                (1..self.contacts.len()).filter(|&i| !self.dead[i] && !self.slow[i]).map(|i| self.contacts[i].id).collect();
            ids.sort_by_key(|id| id.distance(target));
            ids.truncate(want);
            ids
        }
    }

    /// Drive a lookup from peer 0 to its end, answering in a random order, checking on the way
    /// that it never has more than ALPHA live requests out and never asks anyone twice.
    /// Returns the lookup and the requests it sent.
    fn run(m: &Model, target: Id, want: usize, rng: &mut StdRng) -> Result<(Lookup, usize), TestCaseError> {
        let me = m.contacts[0].id;
        let mut l = Lookup::new(me, target, want, m.tables[0].closest(&target, K), Diversity::default());
        let mut now = 0u64;
        let mut in_flight: Vec<(Contact, u64)> = Vec::new();
        let mut asked = HashSet::new();
        for _ in 0..20 * m.contacts.len() + 100 {
            while let Some(c) = l.next(now, &Rtt::default()) {
                prop_assert!(asked.insert(c), "asked {:?} twice", c.id);
                prop_assert!(c.id != me);
                in_flight.push((c, now));
            }
            let live = in_flight.iter().filter(|(_, t)| now - t < STRAGGLER_US).count();
            prop_assert!(live <= ALPHA, "{live} live requests out");
            if l.is_finished(now) {
                return Ok((l, asked.len()));
            }
            let answerable: Vec<usize> = (0..in_flight.len()).filter(|&i| !m.slow[m.index(&in_flight[i].0)]).collect();
            if answerable.is_empty() {
                // Only slow peers are out: time passes to when the next one stops holding a
                // slot or the lookup's end, or fails (the moments the core wakes up for).
                let marks = |&(_, t): &(Contact, u64)| [t + STRAGGLER_US, t + ABANDON_US, t + REQUEST_TIMEOUT_US];
                let next = in_flight.iter().flat_map(marks).filter(|&t| t > now).min();
                now = next.ok_or_else(|| TestCaseError::fail("nothing out, yet not finished"))?;
                while let Some(i) = in_flight.iter().position(|&(_, t)| now >= t + REQUEST_TIMEOUT_US) {
                    let (c, _) = in_flight.remove(i);
                    l.on_failure(&c);
                }
                continue;
            }
            let (c, _) = in_flight.remove(answerable[rng.gen_range(0..answerable.len())]);
            let i = m.index(&c);
            if m.dead[i] {
                l.on_failure(&c);
            } else {
                l.on_answer(&c, m.tables[i].closest(&target, K));
            }
        }
        Err(TestCaseError::fail("the lookup did not finish"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: RngSeed::Fixed(29), failure_persistence: None, ..ProptestConfig::default() })]

        /// In a network of complete tables, a lookup finds exactly the true nearest peers,
        /// whatever the answer order, with at most ALPHA requests out and nobody asked twice.
        #[test]
        fn finds_the_true_nearest(seed in any::<u64>(), n in 2..250usize, want in 1..=K) {
            let mut rng = StdRng::seed_from_u64(seed);
            let m = Model::new(n, 0.0, 0.0, &mut rng);
            let target = Id::random(&mut rng);
            let (l, sent) = run(&m, target, want, &mut rng)?;
            let got: Vec<Id> = l.answered(want).iter().map(|c| c.id).collect();
            prop_assert_eq!(got, m.nearest_alive(&target, want));
            prop_assert_eq!(sent, l.sent);
            prop_assert!(sent < n);
            prop_assert!(l.rounds() >= 1 && l.rounds() as usize <= sent);
        }

        /// With peers that fail or never answer, the lookup still ends, counts only peers that
        /// answered, and finds the nearest of those that can answer.
        #[test]
        fn survives_dead_and_slow_peers(seed in any::<u64>(), n in 30..250usize, dead in 0.0..0.3f64, slow in 0.0..0.2f64) {
            let mut rng = StdRng::seed_from_u64(seed);
            let m = Model::new(n, dead, slow, &mut rng);
            let target = Id::random(&mut rng);
            let want = 5;
            let (l, _) = run(&m, target, want, &mut rng)?;
            let got: Vec<Id> = l.answered(want).iter().map(|c| c.id).collect();
            prop_assert_eq!(got, m.nearest_alive(&target, want));
        }
    }

    /// Twenty Sybils from one /24, with uids nearer the target than any honest peer and
    /// answering only with each other, take at most their prefix's share (2 of 5) of the
    /// set a lookup counts; the 3 nearest honest peers (from four other /24s) fill the rest.
    #[test]
    fn sybils_of_one_prefix_are_a_minority_of_the_set() {
        let mut rng = StdRng::seed_from_u64(31);
        let target = Id::random(&mut rng);
        let at = |id: Id, ip: String| Contact { id, addr: format!("{ip}:7000").parse().unwrap(), static_key: id.0 };
        let honest: Vec<Contact> =
            (0..60).map(|i| at(Id::random(&mut rng), format!("127.0.{}.{}", 1 + i % 4, 10 + i))).collect();
        let sybils: Vec<Contact> = (0..20)
            .map(|i| {
                let mut id = target;
                id.0[31] ^= 1 + i as u8;
                at(id, format!("127.0.9.{}", 1 + i))
            })
            .collect();
        let me = Id::random(&mut rng);
        let mut seeds: Vec<Contact> = honest.clone();
        seeds.extend(&sybils[..2]);
        let mut l = Lookup::new(me, target, 5, seeds, Diversity::strict());
        for _ in 0..200 {
            let Some(c) = l.next(0, &Rtt::default()) else { break };
            if sybils.contains(&c) {
                l.on_answer(&c, sybils.clone());
            } else {
                let mut near = honest.clone();
                near.sort_by_key(|h| h.id.distance(&target));
                near.truncate(K);
                l.on_answer(&c, near);
            }
        }
        assert!(l.is_finished(0));
        let got = l.answered(5);
        let n_sybils = got.iter().filter(|c| sybils.contains(c)).count();
        assert_eq!(n_sybils, 2, "{got:?}");
        let mut want: Vec<Contact> = honest.clone();
        want.sort_by_key(|h| h.id.distance(&target));
        for h in &want[..3] {
            assert!(got.contains(h), "the nearest honest peers are in the set");
        }
        // Without the limits the Sybils would be all of it.
        let mut l = Lookup::new(me, target, 5, sybils.clone(), Diversity::off());
        while let Some(c) = l.next(0, &Rtt::default()) {
            l.on_answer(&c, sybils.clone());
        }
        assert!(l.answered(5).iter().all(|c| sybils.contains(c)));
    }

    /// Contacts at chosen ids (first byte `b[i]`), each on its own address.
    fn at(bytes: &[u8]) -> Vec<Contact> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let mut id = [0u8; 32];
                id[0] = b;
                Contact { id: Id(id), addr: format!("127.0.{i}.1:7000").parse().unwrap(), static_key: [b; 32] }
            })
            .collect()
    }

    /// A request past the time its reply was due keeps no place among the `want` nearest:
    /// the next candidate is asked then, not at the abandon mark; the late reply still counts.
    #[test]
    fn an_overdue_request_lets_the_next_candidate_be_asked() {
        let seeds = at(&[1, 2, 3, 4, 5, 6]);
        let rtt = Rtt::default();
        let mut l = Lookup::new(Id([0xff; 32]), Id::ZERO, 5, seeds.clone(), Diversity::off());
        let first: Vec<Contact> = std::iter::from_fn(|| l.next(0, &rtt)).collect();
        assert_eq!(first, seeds[..ALPHA].to_vec(), "the three nearest, then the slots are full");
        assert!(l.next(STRAGGLER_US - 1, &rtt).is_none());
        // Due (30 ms before anything was measured): the slots and the places free up, so
        // the 4th, 5th and 6th nearest are all asked, the 6th beyond the 5 wanted.
        let later: Vec<Contact> = std::iter::from_fn(|| l.next(STRAGGLER_US, &rtt)).collect();
        assert_eq!(later, seeds[ALPHA..].to_vec());
        for c in &seeds[1..] {
            l.on_answer(c, []);
        }
        assert!(!l.is_finished(STRAGGLER_US), "the nearest is waited for until its abandon mark");
        l.on_answer(&seeds[0], []);
        assert!(l.is_finished(STRAGGLER_US));
        assert_eq!(l.answered(5), seeds[..5].to_vec(), "the late reply counts");
    }

    /// Of waiting candidates equally near the target (the same common prefix with it), the
    /// one measured fastest is asked first; a nearer one still goes before both.
    #[test]
    fn the_faster_of_equally_near_goes_first() {
        let seeds = at(&[0x40, 0x80, 0x81]);
        let mut rtt = Rtt::default();
        rtt.sample(&seeds[2].id, 0, false, 10_000);
        let mut l = Lookup::new(Id([0xff; 32]), Id::ZERO, 5, seeds.clone(), Diversity::off());
        let order: Vec<Contact> = std::iter::from_fn(|| l.next(0, &rtt)).collect();
        assert_eq!(order, vec![seeds[0], seeds[2], seeds[1]]);
    }

    /// A lookup with no seeds has nobody to ask and is finished at once.
    #[test]
    fn no_seeds_is_finished() {
        let mut l = Lookup::new(Id([1; 32]), Id([2; 32]), K, Vec::new(), Diversity::default());
        assert!(l.is_finished(0));
        assert!(l.next(0, &Rtt::default()).is_none());
        assert!(l.answered(K).is_empty());
    }
}
