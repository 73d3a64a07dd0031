//! Requests in flight: tokens, whom each reply belongs to, the queue of what the driver must
//! send, introductions, and the request counters. Replies carry no request id on the wire
//! (PROTOCOL.md §3: FIFO per connection); the driver gives each reply back with its token.

use crate::consts::REQUEST_TIMEOUT_US;
use crate::core::rtt::{Marks, Rtt};
use crate::id::{Contact, Id};
use crate::wire::Request;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

/// A request the driver must send.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// Give it back with the reply (or the failure).
    pub token: u64,
    /// Where to send it.
    pub to: SocketAddr,
    /// The static key the responder must prove (None: any, for `connect`).
    pub expected_static: Option<[u8; 32]>,
    /// What to send.
    pub request: Request,
    /// `to` is in the routing table (set as the core hands it over): the transport keeps
    /// connections to routing contacts in preference to others.
    pub contact: bool,
}

/// The kinds of request (PROTOCOL.md §4), for counting them apart.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RequestKind {
    Iam,
    Peers,
    Set,
    Ref,
    BagAdd,
    BagQuery,
    NamespaceSet,
    NamespaceRef,
}

impl RequestKind {
    /// Every kind, in the order of the counters' arrays.
    pub const ALL: [RequestKind; 8] = [
        RequestKind::Iam,
        RequestKind::Peers,
        RequestKind::Set,
        RequestKind::Ref,
        RequestKind::BagAdd,
        RequestKind::BagQuery,
        RequestKind::NamespaceSet,
        RequestKind::NamespaceRef,
    ];

    pub fn of(r: &Request) -> RequestKind {
        match r {
            Request::Iam { .. } => RequestKind::Iam,
            Request::Peers { .. } => RequestKind::Peers,
            Request::Set { .. } => RequestKind::Set,
            Request::Ref { .. } => RequestKind::Ref,
            Request::BagAdd { .. } => RequestKind::BagAdd,
            Request::BagQuery { .. } => RequestKind::BagQuery,
            Request::NamespaceSet { .. } => RequestKind::NamespaceSet,
            Request::NamespaceRef { .. } => RequestKind::NamespaceRef,
        }
    }

    /// The message's name on the wire (the three bag queries share `bag-query`).
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Iam => "iam",
            RequestKind::Peers => "peers",
            RequestKind::Set => "set",
            RequestKind::Ref => "ref",
            RequestKind::BagAdd => "bag-add",
            RequestKind::BagQuery => "bag-query",
            RequestKind::NamespaceSet => "namespace-set",
            RequestKind::NamespaceRef => "namespace-ref",
        }
    }

    /// Its place in `ALL`, and so in per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Requests this peer sent, failed and answered, per kind (`RequestKind::ALL` order).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Requests sent (introductions and pings included).
    pub sent: [u64; 8],
    /// Requests that failed (no reply within the timeout, refused, closed).
    pub failed: [u64; 8],
    /// Requests other peers sent us.
    pub received: [u64; 8],
}

impl Counters {
    pub fn requests_sent(&self) -> u64 {
        self.sent.iter().sum()
    }

    pub fn requests_failed(&self) -> u64 {
        self.failed.iter().sum()
    }

    pub fn requests_received(&self) -> u64 {
        self.received.iter().sum()
    }

    pub fn count_received(&mut self, r: &Request) {
        self.received[RequestKind::of(r).index()] += 1;
    }

    pub fn count_failed(&mut self, kind: RequestKind) {
        self.failed[kind.index()] += 1;
    }
}

/// Which step of a task a request belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Step {
    /// A request of the task's lookup number `n` (bootstrap runs several at once).
    Lookup(usize),
    /// One of the requests the task sends once its lookup is done (stores, queries).
    Final,
}

/// Whom a reply goes back to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    /// Task `task`, at `step`.
    Task { task: u64, step: Step },
    /// Our `iam` ahead of the first request to a contact: requests carry no sender, so this
    /// is how the peers we ask learn of us (and can route to us later). Its `welcome` is
    /// also the contact's proof of address, key and uid: only then may it join our routing
    /// table (SECURITY.md).
    Introduce,
    /// Is the least recently seen contact of a full bucket still there?
    Ping,
    /// A holder's handover of a record to a newly joined peer: the answer changes nothing.
    Maintain,
}

/// A request awaiting its reply.
pub(crate) struct Sent {
    pub purpose: Purpose,
    pub kind: RequestKind,
    pub to: Contact,
    pub at: u64,
    /// Its marks: straggler, due, abandon (`rtt`).
    pub marks: Marks,
}

/// Introductions (and proven contacts) remembered at most; forgetting only costs a
/// repeated `iam`.
const MAX_INTRODUCED: usize = 4096;

pub(crate) struct Rpc {
    me: Id,
    /// Our listening port, announced in `iam`; None when we accept no connections.
    listen_port: Option<u16>,
    next_token: u64,
    sent: HashMap<u64, Sent>,
    transmits: VecDeque<Transmit>,
    /// Contacts we have sent `iam` to (forgotten wholesale past MAX_INTRODUCED).
    introduced: HashSet<Id>,
    /// Contacts that answered our `iam` as themselves (forgotten wholesale likewise): they
    /// may join the routing table when it has room, without another introduction.
    proven: HashSet<Contact>,
    /// Introductions checking a contact that introduced itself, in flight (token, contact).
    verifying: Vec<(u64, Contact)>,
    pub counters: Counters,
    /// Round-trip times measured, and the marks requests take from them.
    pub rtt: Rtt,
}

impl Rpc {
    pub fn new(me: Id, listen_port: Option<u16>) -> Rpc {
        Rpc {
            me,
            listen_port,
            next_token: 1,
            sent: HashMap::new(),
            transmits: VecDeque::new(),
            introduced: HashSet::new(),
            proven: HashSet::new(),
            verifying: Vec::new(),
            counters: Counters::default(),
            rtt: Rtt::default(),
        }
    }

    /// Our `iam`.
    pub fn iam(&self) -> Request {
        Request::Iam { uid: self.me, port: self.listen_port }
    }

    /// A fresh number, never zero (tokens and task ids share the counter).
    pub fn next_id(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Send `request` to a known contact, which must prove its static key; introduce
    /// ourselves first if we never did (a client too, without a port: the `welcome` is the
    /// contact's proof of its uid).
    pub fn send(&mut self, now: u64, purpose: Purpose, to: Contact, request: Request) {
        if !self.introduced.contains(&to.id) {
            self.mark_introduced(to.id);
            self.send_raw(now, Purpose::Introduce, to, Some(to.static_key), self.iam());
        }
        self.send_raw(now, purpose, to, Some(to.static_key), request);
    }

    fn mark_introduced(&mut self, id: Id) {
        if self.introduced.len() >= MAX_INTRODUCED {
            self.introduced.clear();
        }
        self.introduced.insert(id);
    }

    /// Ask `c`, which introduced itself, to prove its address: our `iam`, sent there.
    pub fn introduce(&mut self, now: u64, c: Contact) {
        self.mark_introduced(c.id);
        let token = self.send_raw(now, Purpose::Introduce, c, Some(c.static_key), self.iam());
        self.verifying.push((token, c));
    }

    /// Introductions of self-introduced contacts in flight whose contact passes `f`.
    pub fn verifying(&self, f: impl Fn(&Contact) -> bool) -> usize {
        self.verifying.iter().filter(|(_, c)| f(c)).count()
    }

    /// The introduction of `c` ended: proven (it answered as itself) or not. An unproven
    /// contact is introduced again the next time we send it something.
    pub fn introduced_result(&mut self, c: Contact, proven: bool) {
        if proven {
            if self.proven.len() >= MAX_INTRODUCED {
                self.proven.clear();
            }
            self.proven.insert(c);
        } else {
            self.introduced.remove(&c.id);
            self.proven.remove(&c);
        }
    }

    /// Whether `c` answered our `iam` as itself (and was not forgotten since).
    pub fn is_proven(&self, c: &Contact) -> bool {
        self.proven.contains(c)
    }

    /// `c` failed us: prove itself again before it rejoins.
    pub fn unprove(&mut self, c: &Contact) {
        self.introduced.remove(&c.id);
        self.proven.remove(c);
    }

    /// Send without an introduction, to whatever key answers when `expected_static` is None.
    /// Returns the request's token.
    pub fn send_raw(
        &mut self,
        now: u64,
        purpose: Purpose,
        to: Contact,
        expected_static: Option<[u8; 32]>,
        request: Request,
    ) -> u64 {
        let token = self.next_id();
        let kind = RequestKind::of(&request);
        self.counters.sent[kind.index()] += 1;
        let marks = self.rtt.marks(&to.id, now);
        self.sent.insert(token, Sent { purpose, kind, to, at: now, marks });
        self.transmits.push_back(Transmit { token, to: to.addr, expected_static, request, contact: false });
        token
    }

    /// Whom request `token`, still in flight, was sent to.
    pub fn addressee(&self, token: u64) -> Option<Contact> {
        self.sent.get(&token).map(|s| s.to)
    }

    /// The request `token` got its answer (or failed): what it was for.
    pub fn take(&mut self, token: u64) -> Option<Sent> {
        let s = self.sent.remove(&token);
        shrink(&mut self.sent);
        if matches!(s, Some(Sent { purpose: Purpose::Introduce, .. })) {
            self.verifying.retain(|(t, _)| *t != token);
        }
        s
    }

    /// Requests unanswered for REQUEST_TIMEOUT_US by `now`.
    /// Oldest first, so the simulator stays deterministic.
    pub fn overdue(&self, now: u64) -> Vec<u64> {
        let mut v: Vec<u64> = self.sent.iter().filter(|(_, s)| now >= s.at + REQUEST_TIMEOUT_US).map(|(t, _)| *t).collect();
        v.sort_unstable();
        v
    }

    /// The next moment a request in flight changes state: it stops holding a lookup slot,
    /// stops holding up its lookup's end, or fails.
    pub fn next_mark(&self, now: u64) -> Option<u64> {
        let mut next = None::<u64>;
        for s in self.sent.values() {
            for t in [s.marks.straggle, s.marks.due, s.marks.abandon, s.at + REQUEST_TIMEOUT_US] {
                if t > now {
                    next = Some(next.map_or(t, |n| n.min(t)));
                    break;
                }
            }
        }
        next
    }

    /// The marks of request `token`, while it is in flight.
    pub fn marks_of(&self, token: u64) -> Option<Marks> {
        self.sent.get(&token).map(|s| s.marks)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() {
            release_spare(&mut self.transmits);
        }
        t
    }
}

/// An idle peer keeps little memory: a drained queue gives its buffer back once it had grown.
pub(crate) fn release_spare<T>(q: &mut VecDeque<T>) {
    if q.capacity() > 8 {
        *q = VecDeque::new();
    }
}

/// A map that emptied out after a burst gives back most of its table (keeping room to grow
/// again without rehashing at once).
pub(crate) fn shrink<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 32 && m.len() * 4 < m.capacity() {
        m.shrink_to(m.len() * 2);
    }
}
