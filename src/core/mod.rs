//! The protocol core: a pure state machine with no sockets and no clock reads. The driver
//! (the TCP event loop, the external transport, or the simulator) feeds it time, requests,
//! replies and failures, then drains what to transmit (`poll_transmit`), finished operations
//! (`poll_event`) and when to call it next (`next_timeout`). Randomness comes from a seed.

use crate::consts::*;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::lookup::{Lookup, ABANDON_US, STRAGGLER_US};
use crate::routing::{Insert, RoutingTable};
use crate::sign;
use crate::store::Store;
use crate::wire::{BagEntry, BagKind, NamespaceRecord, Reply, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

mod merge;
mod ops;
mod replies;
mod serve;

/// How often stored data is swept for expiry.
const EXPIRE_EVERY_US: u64 = 60_000_000;

pub struct CoreConfig {
    pub uid: Id,
    pub replication: u32,
    /// Our listening port, announced in `iam`; None when we accept no connections.
    pub listen_port: Option<u16>,
    /// Our Noise static public key (all zero on a program-supplied transport).
    pub static_public: [u8; 32],
    pub seed: u64,
}

/// An operation a caller asks for.
#[derive(Clone, Debug)]
pub enum Op {
    Connect {
        addr: SocketAddr,
    },
    Bootstrap,
    /// A plain node lookup (bootstrap and the simulator's measurements use it).
    FindNodes {
        target: Id,
    },
    Set {
        value: Arc<Vec<u8>>,
    },
    Ref {
        key: Id,
    },
    BagPublish {
        key: Id,
        value: [u8; 32],
    },
    BagQuery {
        kind: BagKind,
        key: Id,
        cap: usize,
    },
    BagQueryAt {
        uid: Id,
        kind: BagKind,
        key: Id,
        cap: usize,
    },
    /// `seq_floor`: the current Unix time in microseconds (SPEC 4: never below it).
    NamespaceSet {
        secret: [u8; 32],
        public_key: [u8; 32],
        key: [u8; 32],
        value: [u8; 32],
        seq_floor: u64,
    },
    NamespaceRef {
        public_key: [u8; 32],
        key: [u8; 32],
        pin: Option<[u8; 64]>,
    },
    NamespaceRefAt {
        uid: Id,
        public_key: [u8; 32],
        key: [u8; 32],
        pin: Option<[u8; 64]>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum OpResult {
    Done,
    Nodes { contacts: Vec<Contact>, rounds: u32, sent: usize },
    Key(Id),
    Value(Option<Vec<u8>>),
    Values(Vec<[u8; 32]>),
    Signature([u8; 64]),
    Record(Option<([u8; 32], [u8; 64])>),
    Failed(Error),
}

/// A request the driver must send.
#[derive(Clone, Debug)]
pub struct Transmit {
    pub token: u64,
    pub to: SocketAddr,
    /// The static key the responder must prove (None: any, for `connect`).
    pub expected_static: Option<[u8; 32]>,
    pub request: Request,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub requests_sent: u64,
    pub requests_failed: u64,
    pub requests_received: u64,
}

/// Why a request was sent.
#[derive(Clone, Copy, Debug)]
enum Purpose {
    /// A lookup step of op (sub-lookup index for bootstrap).
    Lookup(usize),
    /// A store or a query at the end of an op.
    Final,
    /// Is the least recently seen contact of a full bucket still there?
    Ping,
    Connect,
    /// Our `iam` ahead of the first request to a contact: requests carry no sender, so
    /// this is how the peers we ask learn of us (and can route to us later).
    Introduce,
}

struct Sent {
    op: u64,
    purpose: Purpose,
    to: Contact,
    at: u64,
}

/// Where an operation is.
enum Phase {
    /// Looking up the target; bootstrap has several lookups at once.
    Lookup(Vec<Lookup>),
    /// Final requests out; the op ends when none is outstanding.
    Final { outstanding: usize },
}

struct Pending {
    client: u64,
    op: Op,
    phase: Phase,
    deadline: u64,
    /// Stores accepted / query replies gathered.
    accepted: usize,
    bag_replies: Vec<Vec<BagEntry>>,
    best: Option<NamespaceRecord>,
    value: Option<Vec<u8>>,
    /// For `_at` ops: the contact, once found.
    at: Option<Contact>,
    signature: Option<[u8; 64]>,
    /// Bootstrap: false while looking up our own uid, true while refreshing far buckets.
    refreshing: bool,
}

pub struct Core {
    me: Id,
    replication: usize,
    listen_port: Option<u16>,
    static_public: [u8; 32],
    routing: RoutingTable,
    store: Box<dyn Store>,
    rng: StdRng,
    next_token: u64,
    sent: HashMap<u64, Sent>,
    ops: HashMap<u64, Pending>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<(u64, OpResult)>,
    next_expire: u64,
    now: u64,
    /// Contacts we have sent `iam` to (forgotten wholesale past MAX_INTRODUCED).
    introduced: HashSet<Id>,
    pub counters: Counters,
}

/// Introductions remembered at most; forgetting only costs a repeated `iam`.
const MAX_INTRODUCED: usize = 4096;

impl Core {
    pub fn new(cfg: CoreConfig, store: Box<dyn Store>, now: u64) -> Core {
        Core {
            me: cfg.uid,
            replication: cfg.replication as usize,
            listen_port: cfg.listen_port,
            static_public: cfg.static_public,
            routing: RoutingTable::new(cfg.uid),
            store,
            rng: StdRng::seed_from_u64(cfg.seed),
            next_token: 1,
            sent: HashMap::new(),
            ops: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_expire: now + EXPIRE_EVERY_US,
            now,
            introduced: HashSet::new(),
            counters: Counters::default(),
        }
    }

    pub fn uid(&self) -> Id {
        self.me
    }

    pub fn routing(&self) -> &RoutingTable {
        &self.routing
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Add a contact directly (the simulator seeds tables this way).
    pub fn add_contact(&mut self, c: Contact, now: u64) {
        self.heard_from(c, now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() {
            release_spare(&mut self.transmits);
        }
        t
    }

    pub fn poll_event(&mut self) -> Option<(u64, OpResult)> {
        let e = self.events.pop_front();
        if e.is_none() {
            release_spare(&mut self.events);
        }
        e
    }

    /// When `handle_timeout` should next be called.
    pub fn next_timeout(&self) -> Option<u64> {
        let mut t = self.next_expire;
        for s in self.sent.values() {
            for d in [STRAGGLER_US, ABANDON_US, REQUEST_TIMEOUT_US] {
                if s.at + d > self.now {
                    t = t.min(s.at + d);
                    break;
                }
            }
        }
        for p in self.ops.values() {
            t = t.min(p.deadline);
        }
        Some(t)
    }

    // ---- helpers --------------------------------------------------------------------------

    fn next_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    fn send(&mut self, now: u64, op: u64, purpose: Purpose, to: Contact, request: Request) {
        let expected = Some(to.static_key);
        if self.listen_port.is_some() && !self.introduced.contains(&to.id) {
            if self.introduced.len() >= MAX_INTRODUCED {
                self.introduced.clear();
            }
            self.introduced.insert(to.id);
            let iam = Request::Iam { uid: self.me, port: self.listen_port };
            self.send_raw(now, 0, Purpose::Introduce, to, expected, iam);
        }
        self.send_raw(now, op, purpose, to, expected, request);
    }

    fn send_raw(
        &mut self,
        now: u64,
        op: u64,
        purpose: Purpose,
        to: Contact,
        expected_static: Option<[u8; 32]>,
        request: Request,
    ) {
        let token = self.next_token();
        self.counters.requests_sent += 1;
        self.sent.insert(token, Sent { op, purpose, to, at: now });
        self.transmits.push_back(Transmit { token, to: to.addr, expected_static, request });
    }

    /// `c` answered us or introduced itself: keep it in the routing table (pinging the
    /// oldest contact of a full bucket to decide who stays).
    fn heard_from(&mut self, c: Contact, now: u64) {
        if let Insert::Ping(old) = self.routing.insert(c, now) {
            let req = Request::Iam { uid: self.me, port: self.listen_port };
            self.send(now, 0, Purpose::Ping, old, req);
        }
    }
}

/// Where a namespace record lives: SHA-256(public-key || key).
pub fn ns_target(public_key: &[u8; 32], key: &[u8; 32]) -> Id {
    Id::hash_parts(&[public_key, key])
}

/// Who published a bag entry: the authenticated static key, or the address on a
/// program-supplied transport (which has no keys).
fn publisher_of(from: SocketAddr, remote_static: [u8; 32]) -> [u8; 32] {
    if remote_static != [0; 32] {
        return remote_static;
    }
    Id::hash(from.to_string().as_bytes()).0
}

/// An idle peer keeps little memory: a drained queue gives its buffer back once it had grown.
fn release_spare<T>(q: &mut VecDeque<T>) {
    if q.capacity() > 8 {
        *q = VecDeque::new();
    }
}

/// A map that emptied out after a burst gives back most of its table (keeping room to grow
/// again without rehashing at once).
pub(super) fn shrink<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 32 && m.len() * 4 < m.capacity() {
        m.shrink_to(m.len() * 2);
    }
}
