//! The protocol core: a pure state machine with no sockets and no clock reads. The driver
//! (the TCP event loop, the external transport, or the simulator) feeds it time, requests,
//! replies and failures, then drains what to transmit (`poll_transmit`), finished operations
//! (`poll_event`) and when to call it next (`next_timeout`). Randomness comes from a seed.

use crate::consts::*;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::lookup::{Lookup, ABANDON_US, STRAGGLER_US};
use crate::routing::{Insert, RoutingTable};
use crate::store::Store;
use crate::wire::{BagEntry, BagKind, NamespaceRecord, Reply, Request};
use crate::{ops, sign};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

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
    Connect { addr: SocketAddr },
    Bootstrap,
    /// A plain node lookup (bootstrap and the simulator's measurements use it).
    FindNodes { target: Id },
    Set { value: Arc<Vec<u8>> },
    Ref { key: Id },
    BagPublish { key: Id, value: [u8; 32] },
    BagQuery { kind: BagKind, key: Id, cap: usize },
    BagQueryAt { uid: Id, kind: BagKind, key: Id, cap: usize },
    /// `seq_floor`: the current Unix time in microseconds (SPEC 4: never below it).
    NamespaceSet { secret: [u8; 32], public_key: [u8; 32], key: [u8; 32], value: [u8; 32], seq_floor: u64 },
    NamespaceRef { public_key: [u8; 32], key: [u8; 32], pin: Option<[u8; 64]> },
    NamespaceRefAt { uid: Id, public_key: [u8; 32], key: [u8; 32], pin: Option<[u8; 64]> },
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
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<(u64, OpResult)> {
        self.events.pop_front()
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

    // ---- requests from others -------------------------------------------------------------

    /// Answer a request that arrived from `from` (authenticated as `remote_static`).
    pub fn handle_request(&mut self, now: u64, from: SocketAddr, remote_static: [u8; 32], req: Request) -> Reply {
        self.now = now;
        self.counters.requests_received += 1;
        match req {
            Request::Iam { uid, port } => {
                if let Some(port) = port {
                    let c = Contact { id: uid, addr: SocketAddr::new(from.ip(), port), static_key: remote_static };
                    self.heard_from(c, now);
                }
                Reply::Welcome { ip: from.ip(), port: from.port(), uid: self.me }
            }
            Request::Peers { key } => Reply::Peers(self.routing.closest(&key, K)),
            Request::Set { value } => {
                let key = Id::hash(&value);
                Reply::Bool(self.accepts(&key) && self.store.put_value(key, value, now))
            }
            Request::Ref { key } => match self.store.get_value(&key) {
                Some(v) => Reply::Value(v),
                None => Reply::Peers(self.routing.closest(&key, K)),
            },
            Request::BagAdd { key, value } => {
                let publisher = publisher_of(from, remote_static);
                Reply::Bool(self.accepts(&key) && self.store.bag_add(key, value, publisher, now))
            }
            Request::BagQuery { kind, key } => Reply::Bag(self.local_bag(kind, &key, MAX_BAG_REPLY, now)),
            Request::NamespaceSet(r) => {
                let target = ns_target(&r.public_key, &r.key);
                Reply::Bool(self.accepts(&target) && self.store.namespace_put(r, now).is_ok())
            }
            Request::NamespaceRef { public_key, key } => match self.store.namespace_get(&public_key, &key) {
                Some(r) => Reply::Namespace { value: r.value, signature: r.signature, seq: r.seq },
                None => Reply::Peers(self.routing.closest(&ns_target(&public_key, &key), K)),
            },
        }
    }

    /// SPEC 1: a store is accepted only by one of the K nearest peers we know, us included.
    fn accepts(&self, target: &Id) -> bool {
        self.routing.nearer_than_me(target, K) < K
    }

    fn local_bag(&mut self, kind: BagKind, key: &Id, max: usize, now: u64) -> Vec<BagEntry> {
        let rng = &mut self.rng;
        self.store.bag_query(key, kind, max, now, &mut || rng.gen())
    }

    // ---- operations -----------------------------------------------------------------------

    /// Start `op` for the caller's `client` token; its result comes out of `poll_event`.
    pub fn start(&mut self, now: u64, client: u64, op: Op) {
        self.now = now;
        let id = self.next_token();
        let mut p = Pending {
            client,
            op: op.clone(),
            phase: Phase::Final { outstanding: 0 },
            deadline: now + OP_TIMEOUT_US,
            accepted: 0,
            bag_replies: Vec::new(),
            best: None,
            value: None,
            at: None,
            signature: None,
            refreshing: false,
        };
        let want = self.replication;
        let lookup = |core: &Core, target: Id, want: usize| Lookup::new(core.me, target, want, core.routing.closest(&target, K));
        match op {
            Op::Connect { addr } => {
                let to = Contact { id: Id::ZERO, addr, static_key: [0; 32] };
                let req = Request::Iam { uid: self.me, port: self.listen_port };
                self.send_raw(now, id, Purpose::Connect, to, None, req);
                p.phase = Phase::Final { outstanding: 1 };
            }
            Op::Bootstrap | Op::FindNodes { .. } if self.routing.is_empty() => {
                return self.events.push_back((client, OpResult::Failed(Error::Unreachable("no known peer: connect to one first".into()))));
            }
            Op::Bootstrap => p.phase = Phase::Lookup(vec![lookup(self, self.me, K)]),
            Op::FindNodes { target } => p.phase = Phase::Lookup(vec![lookup(self, target, K)]),
            Op::Set { ref value } => p.phase = Phase::Lookup(vec![lookup(self, Id::hash(value), want)]),
            Op::Ref { key } => {
                if let Some(v) = self.store.get_value(&key) {
                    return self.events.push_back((client, OpResult::Value(Some(v))));
                }
                p.phase = Phase::Lookup(vec![lookup(self, key, want)]);
            }
            Op::BagPublish { key, .. } | Op::BagQuery { key, .. } => p.phase = Phase::Lookup(vec![lookup(self, key, want)]),
            Op::NamespaceSet { secret, public_key, key, .. } => {
                if sign::public_of(&secret) != public_key {
                    return self.events.push_back((client, OpResult::Failed(Error::KeyMismatch)));
                }
                p.best = self.store.namespace_get(&public_key, &key);
                p.phase = Phase::Lookup(vec![lookup(self, ns_target(&public_key, &key), want)]);
            }
            Op::NamespaceRef { public_key, key, pin } => {
                p.best = self.store.namespace_get(&public_key, &key).filter(|r| pin.map_or(true, |s| s == r.signature));
                p.phase = Phase::Lookup(vec![lookup(self, ns_target(&public_key, &key), want)]);
            }
            Op::BagQueryAt { uid, .. } | Op::NamespaceRefAt { uid, .. } => {
                if uid == self.me {
                    let r = self.local_answer_at(now, &op_of(&p));
                    return self.events.push_back((client, r));
                }
                match self.routing.get(&uid) {
                    Some(c) => {
                        p.at = Some(c);
                        self.ops.insert(id, p);
                        return self.send_final(now, id);
                    }
                    None if self.routing.is_empty() => {
                        return self.events.push_back((client, OpResult::Failed(Error::Unreachable("no known peer".into()))));
                    }
                    None => p.phase = Phase::Lookup(vec![lookup(self, uid, K)]),
                }
            }
        }
        self.ops.insert(id, p);
        self.advance(now, id);
    }

    fn local_answer_at(&mut self, now: u64, op: &Op) -> OpResult {
        match *op {
            Op::BagQueryAt { kind, key, cap, .. } => {
                OpResult::Values(self.local_bag(kind, &key, cap.min(MAX_BAG_REPLY), now).into_iter().map(|e| e.value).collect())
            }
            Op::NamespaceRefAt { public_key, key, pin, .. } => OpResult::Record(
                self.store
                    .namespace_get(&public_key, &key)
                    .filter(|r| pin.map_or(true, |s| s == r.signature))
                    .map(|r| (r.value, r.signature)),
            ),
            _ => OpResult::Failed(Error::Internal("not an _at op".into())),
        }
    }

    /// Push an op forward: ask what its lookups want asked, or move to its final phase.
    fn advance(&mut self, now: u64, id: u64) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        let Phase::Lookup(lookups) = &mut p.phase else { return };
        let mut asks = Vec::new();
        for (i, l) in lookups.iter_mut().enumerate() {
            while let Some(c) = l.next(now) {
                asks.push((i, c, l.target()));
            }
        }
        let finished = lookups.iter().all(|l| l.is_finished(now));
        let op = p.op.clone();
        for (i, c, target) in asks {
            let req = match op {
                Op::Ref { key } => Request::Ref { key },
                Op::NamespaceSet { public_key, key, .. } | Op::NamespaceRef { public_key, key, .. } => {
                    Request::NamespaceRef { public_key, key }
                }
                _ => Request::Peers { key: target },
            };
            self.send(now, id, Purpose::Lookup(i), c, req);
        }
        if finished {
            self.lookups_finished(now, id);
        }
    }

    /// Every lookup of op `id` is done: start its final phase or finish it.
    fn lookups_finished(&mut self, now: u64, id: u64) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        let Phase::Lookup(lookups) = std::mem::replace(&mut p.phase, Phase::Final { outstanding: 0 }) else { return };
        let want = self.replication;
        match p.op.clone() {
            Op::Bootstrap if !p.refreshing => {
                p.refreshing = true;
                // Nearby peers are known now; refresh every far bucket that is not full.
                let nearest = self.routing.closest(&self.me, 1);
                let depth = nearest.first().and_then(|c| self.me.common_prefix(&c.id)).unwrap_or(0);
                let mut subs = Vec::new();
                for b in 0..depth {
                    if self.routing.bucket_len(b) < K {
                        let target = self.me.random_in_bucket(b, &mut self.rng);
                        subs.push(Lookup::new(self.me, target, K, self.routing.closest(&target, K)));
                    }
                }
                let p = self.ops.get_mut(&id).expect("op exists");
                if subs.is_empty() {
                    return self.finish(id, OpResult::Done);
                }
                p.phase = Phase::Lookup(subs);
                self.advance(now, id);
            }
            Op::Bootstrap => self.finish(id, OpResult::Done),
            Op::FindNodes { .. } => {
                let l = &lookups[0];
                let r = OpResult::Nodes { contacts: l.answered(K), rounds: l.rounds(), sent: l.sent };
                self.finish(id, r)
            }
            Op::Ref { .. } => {
                let v = p.value.take();
                self.finish(id, OpResult::Value(v))
            }
            Op::NamespaceRef { .. } => {
                let r = p.best.map(|r| (r.value, r.signature));
                self.finish(id, OpResult::Record(r))
            }
            Op::BagQueryAt { uid, .. } | Op::NamespaceRefAt { uid, .. } => match lookups[0].find(&uid) {
                Some(c) => {
                    p.at = Some(c);
                    self.send_final(now, id)
                }
                None => self.finish(id, OpResult::Failed(Error::Unreachable("no peer with that uid was found".into()))),
            },
            Op::Set { .. } | Op::BagPublish { .. } | Op::BagQuery { .. } | Op::NamespaceSet { .. } => {
                let mut targets = lookups[0].answered(want);
                let target = lookups[0].target();
                // We hold a copy too when we are among the nearest, in place of the farthest
                // target, so exactly `replication` peers hold it (a later writer elsewhere
                // then reaches every copy).
                let local = targets.len() < want
                    || targets.last().is_some_and(|c| self.me.distance(&target) < c.id.distance(&target));
                if local && targets.len() >= want {
                    targets.truncate(want - 1);
                }
                if let Op::NamespaceSet { secret, public_key, key, value, seq_floor } = p.op {
                    let seq = p.best.map_or(0, |b| b.seq.saturating_add(1)).max(seq_floor);
                    let r = sign::sign(&secret, public_key, key, value, seq);
                    p.signature = Some(r.signature);
                    p.best = Some(r);
                }
                if local {
                    self.store_locally(now, id);
                }
                let p = self.ops.get_mut(&id).expect("op exists");
                let req = match &p.op {
                    Op::Set { value } => Request::Set { value: value.to_vec() },
                    Op::BagPublish { key, value } => Request::BagAdd { key: *key, value: *value },
                    Op::BagQuery { kind, key, .. } => Request::BagQuery { kind: *kind, key: *key },
                    _ => Request::NamespaceSet(p.best.expect("record signed above")),
                };
                p.phase = Phase::Final { outstanding: targets.len() };
                for c in targets.iter() {
                    self.send(now, id, Purpose::Final, *c, req.clone());
                }
                if targets.is_empty() {
                    self.complete_final(id);
                }
            }
            Op::Connect { .. } => {}
        }
    }

    fn store_locally(&mut self, now: u64, id: u64) {
        let publisher = self.static_public_or_uid();
        let Some(p) = self.ops.get_mut(&id) else { return };
        let ok = match &p.op {
            Op::Set { value } => self.store.put_value(Id::hash(value), value.to_vec(), now),
            Op::BagPublish { key, value } => self.store.bag_add(*key, *value, publisher, now),
            Op::BagQuery { kind, key, .. } => {
                let (kind, key) = (*kind, *key);
                let rng = &mut self.rng;
                let entries = self.store.bag_query(&key, kind, MAX_BAG_REPLY, now, &mut || rng.gen());
                p.bag_replies.push(entries);
                true
            }
            Op::NamespaceSet { .. } => p.best.is_some_and(|r| self.store.namespace_put(r, now).is_ok()),
            _ => false,
        };
        if ok {
            p.accepted += 1;
        }
    }

    fn static_public_or_uid(&self) -> [u8; 32] {
        if self.static_public == [0; 32] {
            self.me.0
        } else {
            self.static_public
        }
    }

    /// Send the one request of an `_at` op to its contact.
    fn send_final(&mut self, now: u64, id: u64) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        let c = p.at.expect("contact found");
        let req = match p.op {
            Op::BagQueryAt { kind, key, .. } => Request::BagQuery { kind, key },
            Op::NamespaceRefAt { public_key, key, .. } => Request::NamespaceRef { public_key, key },
            _ => return,
        };
        p.phase = Phase::Final { outstanding: 1 };
        self.send(now, id, Purpose::Final, c, req);
    }

    /// All final requests of op `id` are answered or failed.
    fn complete_final(&mut self, id: u64) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        let r = match &p.op {
            Op::Set { value } if p.accepted > 0 => OpResult::Key(Id::hash(value)),
            Op::BagPublish { .. } if p.accepted > 0 => OpResult::Done,
            Op::NamespaceSet { .. } if p.accepted > 0 => OpResult::Signature(p.signature.expect("signed")),
            Op::Set { .. } | Op::BagPublish { .. } | Op::NamespaceSet { .. } => OpResult::Failed(Error::NotStored),
            Op::BagQuery { kind, cap, .. } => {
                OpResult::Values(ops::merge_bags(*kind, std::mem::take(&mut p.bag_replies), *cap, &mut self.rng))
            }
            Op::BagQueryAt { cap, .. } => match p.bag_replies.pop() {
                Some(mut entries) => {
                    entries.truncate(*cap);
                    OpResult::Values(entries.into_iter().map(|e| e.value).collect())
                }
                None => OpResult::Failed(Error::Unreachable("that peer did not answer".into())),
            },
            Op::NamespaceRefAt { .. } if p.accepted > 0 => OpResult::Record(p.best.map(|r| (r.value, r.signature))),
            Op::NamespaceRefAt { .. } => OpResult::Failed(Error::Unreachable("that peer did not answer".into())),
            Op::Connect { .. } if p.accepted > 0 => OpResult::Done,
            Op::Connect { addr } => OpResult::Failed(Error::Unreachable(format!("{addr} did not answer"))),
            _ => OpResult::Failed(Error::Internal("unexpected final phase".into())),
        };
        self.finish(id, r);
    }

    fn finish(&mut self, id: u64, r: OpResult) {
        if let Some(p) = self.ops.remove(&id) {
            self.events.push_back((p.client, r));
        }
    }

    // ---- replies and failures -------------------------------------------------------------

    /// The reply to request `token` (with the responder's static key), or None if it failed.
    pub fn handle_reply(&mut self, now: u64, token: u64, reply: Option<(Reply, [u8; 32])>) {
        self.now = now;
        let Some(s) = self.sent.remove(&token) else { return };
        match reply {
            Some((reply, remote_static)) => self.on_reply(now, s, reply, remote_static),
            None => self.on_failure(now, s),
        }
    }

    fn on_reply(&mut self, now: u64, s: Sent, reply: Reply, remote_static: [u8; 32]) {
        let id = s.op;
        match s.purpose {
            Purpose::Connect => {
                let ok = match reply {
                    Reply::Welcome { uid, .. } => {
                        let c = Contact { id: uid, addr: s.to.addr, static_key: remote_static };
                        !matches!(self.routing.insert(c, now), Insert::Rejected)
                    }
                    _ => false,
                };
                self.final_reply(id, ok);
            }
            Purpose::Introduce => {
                if matches!(reply, Reply::Welcome { uid, .. } if uid == s.to.id) {
                    self.heard_from(s.to, now);
                }
            }
            Purpose::Ping => match reply {
                Reply::Welcome { uid, .. } if uid == s.to.id => {
                    self.routing.insert(s.to, now);
                    self.routing.drop_pending(&s.to.id);
                }
                _ => self.routing.evict_for_pending(&s.to.id, now),
            },
            Purpose::Lookup(i) => self.on_lookup_reply(now, id, i, s.to, reply),
            Purpose::Final => {
                self.heard_from(s.to, now);
                let Some(p) = self.ops.get_mut(&id) else { return };
                let ok = match (&p.op, reply) {
                    (Op::BagQuery { .. } | Op::BagQueryAt { .. }, Reply::Bag(entries)) => {
                        p.bag_replies.push(entries);
                        true
                    }
                    (Op::NamespaceRefAt { public_key, key, pin, .. }, Reply::Namespace { value, signature, seq }) => {
                        let r = NamespaceRecord { public_key: *public_key, key: *key, value, signature, seq };
                        if sign::verify(&r) && pin.map_or(true, |s| s == signature) {
                            p.best = Some(r);
                        }
                        true
                    }
                    (Op::NamespaceRefAt { .. }, Reply::Peers(_)) => true,
                    (_, Reply::Bool(b)) => b,
                    _ => false,
                };
                self.final_reply(id, ok);
            }
        }
    }

    fn final_reply(&mut self, id: u64, ok: bool) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        if ok {
            p.accepted += 1;
        }
        if let Phase::Final { outstanding } = &mut p.phase {
            *outstanding = outstanding.saturating_sub(1);
            if *outstanding == 0 {
                self.complete_final(id);
            }
        }
    }

    fn on_lookup_reply(&mut self, now: u64, id: u64, i: usize, from: Contact, reply: Reply) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        let Phase::Lookup(lookups) = &mut p.phase else { return };
        let Some(l) = lookups.get_mut(i) else { return };
        let mut good = true;
        match (&p.op, reply) {
            (_, Reply::Peers(contacts)) => l.on_answer(&from.id, contacts),
            (Op::Ref { key }, Reply::Value(v)) => {
                if Id::hash(&v) == *key {
                    l.on_answer(&from.id, []);
                    p.value = Some(v);
                } else {
                    // A value that does not hash to its key is a lie: drop it and that peer.
                    l.on_failure(&from.id);
                    good = false;
                }
            }
            (Op::NamespaceSet { public_key, key, .. } | Op::NamespaceRef { public_key, key, .. }, Reply::Namespace { value, signature, seq }) => {
                let pin = if let Op::NamespaceRef { pin, .. } = p.op { pin } else { None };
                let r = NamespaceRecord { public_key: *public_key, key: *key, value, signature, seq };
                if sign::verify(&r) {
                    l.on_answer(&from.id, []);
                    if pin.map_or(true, |s| s == signature) && p.best.map_or(true, |b| sign::newer(&r, &b)) {
                        p.best = Some(r);
                    }
                } else {
                    l.on_failure(&from.id);
                    good = false;
                }
            }
            _ => {
                l.on_failure(&from.id);
                good = false;
            }
        }
        if good {
            self.heard_from(from, now);
        } else {
            self.routing.remove(&from.id);
        }
        // A found value ends a ref at once; a found uid ends an `_at` search.
        let p = self.ops.get_mut(&id).expect("op exists");
        let done = match p.op {
            Op::Ref { .. } => p.value.is_some(),
            Op::BagQueryAt { uid, .. } | Op::NamespaceRefAt { uid, .. } => {
                matches!(&p.phase, Phase::Lookup(ls) if ls[0].find(&uid).is_some())
            }
            _ => false,
        };
        if done {
            self.lookups_finished(now, id);
        } else {
            self.advance(now, id);
        }
    }

    fn on_failure(&mut self, now: u64, s: Sent) {
        self.counters.requests_failed += 1;
        match s.purpose {
            Purpose::Connect => self.final_reply(s.op, false),
            Purpose::Introduce => {}
            Purpose::Ping => self.routing.evict_for_pending(&s.to.id, now),
            Purpose::Lookup(i) => {
                self.routing.remove(&s.to.id);
                if let Some(Pending { phase: Phase::Lookup(ls), .. }) = self.ops.get_mut(&s.op) {
                    if let Some(l) = ls.get_mut(i) {
                        l.on_failure(&s.to.id);
                    }
                }
                self.advance(now, s.op);
            }
            Purpose::Final => {
                self.routing.remove(&s.to.id);
                self.final_reply(s.op, false);
            }
        }
    }

    /// Time passed: fail overdue requests, let lookups pass stragglers, expire data.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        let overdue: Vec<u64> = self.sent.iter().filter(|(_, s)| now >= s.at + REQUEST_TIMEOUT_US).map(|(t, _)| *t).collect();
        for t in overdue {
            self.handle_reply(now, t, None);
        }
        let late: Vec<u64> = self.ops.iter().filter(|(_, p)| now >= p.deadline).map(|(i, _)| *i).collect();
        for id in late {
            self.finish(id, OpResult::Failed(Error::Unreachable("operation timed out".into())));
        }
        let lookups: Vec<u64> = self.ops.iter().filter(|(_, p)| matches!(p.phase, Phase::Lookup(_))).map(|(i, _)| *i).collect();
        for id in lookups {
            self.advance(now, id);
        }
        if now >= self.next_expire {
            self.store.expire(now);
            self.next_expire = now + EXPIRE_EVERY_US;
        }
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

    fn send_raw(&mut self, now: u64, op: u64, purpose: Purpose, to: Contact, expected_static: Option<[u8; 32]>, request: Request) {
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

fn op_of(p: &Pending) -> Op {
    p.op.clone()
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
