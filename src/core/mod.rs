//! The protocol core: a pure state machine with no sockets and no clock reads. The driver
//! (the TCP event loop, the external transport, or the simulator) feeds it time, requests,
//! replies and failures, then drains what to transmit (`poll_transmit`), finished operations
//! (`poll_event`) and when to call it next (`next_timeout`). Randomness comes from a seed.
//!
//! Inside: `local` (what this peer is, knows and holds), `rpc` (requests in flight),
//! `serve` (answering others), `task` (one type per kind of operation), and the Kademlia
//! pieces they use: `routing` (the table), `lookup` (one iterative lookup), `merge`.

pub(crate) mod local;
pub(crate) mod lookup;
mod merge;
pub(crate) mod op;
pub(crate) mod routing;
pub(crate) mod rpc;
mod serve;
pub(crate) mod task;

pub use op::{Op, OpResult};
pub use rpc::{Counters, Transmit};

use crate::consts::OP_TIMEOUT_US;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::store::Store;
use crate::wire::{Reply, Request};
use local::Local;
use rand::rngs::StdRng;
use rand::SeedableRng;
use routing::RoutingTable;
use rpc::{release_spare, Purpose, Rpc, Sent};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use task::at::{At, Query};
use task::{Cx, Progress, Task};

/// How often stored data is swept for expiry.
const EXPIRE_EVERY_US: u64 = 60_000_000;

/// Who a core is.
pub struct CoreConfig {
    /// Its uid.
    pub uid: Id,
    /// How many of the nearest peers hold each record (5..=20, checked by the caller).
    pub replication: u32,
    /// Our listening port, announced in `iam`; None when we accept no connections.
    pub listen_port: Option<u16>,
    /// Our Noise static public key (all zero on a program-supplied transport).
    pub static_public: [u8; 32],
    /// Seed of every random choice the core makes.
    pub seed: u64,
}

/// A task at work for a caller.
struct Running {
    client: u64,
    deadline: u64,
    task: Box<dyn Task>,
}

/// One peer's protocol state.
pub struct Core {
    local: Local,
    rpc: Rpc,
    /// By id, so ticks visit them in a fixed order (the simulator is deterministic).
    tasks: BTreeMap<u64, Running>,
    events: VecDeque<(u64, OpResult)>,
    next_expire: u64,
    now: u64,
}

impl Core {
    /// A core holding `store`, its clock starting at `now` (microseconds).
    pub fn new(cfg: CoreConfig, store: Box<dyn Store>, now: u64) -> Core {
        let local = Local {
            me: cfg.uid,
            replication: cfg.replication as usize,
            static_public: cfg.static_public,
            routing: RoutingTable::new(cfg.uid),
            store,
            rng: StdRng::seed_from_u64(cfg.seed),
        };
        Core {
            local,
            rpc: Rpc::new(cfg.uid, cfg.listen_port),
            tasks: BTreeMap::new(),
            events: VecDeque::new(),
            next_expire: now + EXPIRE_EVERY_US,
            now,
        }
    }

    /// Our uid.
    pub fn uid(&self) -> Id {
        self.local.me
    }

    /// Our routing table.
    pub fn routing(&self) -> &RoutingTable {
        &self.local.routing
    }

    /// What we hold for others.
    pub fn store(&self) -> &dyn Store {
        &*self.local.store
    }

    /// Requests sent, failed and received so far.
    pub fn counters(&self) -> Counters {
        self.rpc.counters
    }

    /// Add a contact directly (the simulator seeds tables this way).
    pub fn add_contact(&mut self, c: Contact, now: u64) {
        self.local.heard_from(&mut self.rpc, c, now);
    }

    /// The next request to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.rpc.poll_transmit()
    }

    /// The next finished operation: the caller's token and its result.
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
        if let Some(m) = self.rpc.next_mark(self.now) {
            t = t.min(m);
        }
        for r in self.tasks.values() {
            t = t.min(r.deadline);
        }
        Some(t)
    }

    /// Start `op` for the caller's `client` token; its result comes out of `poll_event`.
    pub fn start(&mut self, now: u64, client: u64, op: Op) {
        self.now = now;
        let id = self.rpc.next_id();
        let mut cx = Cx::new(now, id, &mut self.local, &mut self.rpc);
        let mut task: Box<dyn Task> = match op {
            Op::Connect { addr } => Box::new(task::connect::Connect::new(addr)),
            Op::Bootstrap => Box::new(task::bootstrap::Bootstrap::new()),
            Op::FindNodes { target } => Box::new(task::find::Find::new(&cx, target)),
            Op::Set { value } => Box::new(task::store::Store::value(&cx, value)),
            Op::Ref { key } => Box::new(task::fetch::Fetch::value(&cx, key)),
            Op::BagPublish { key, value } => Box::new(task::store::Store::bag_entry(&cx, key, value)),
            Op::BagQuery { kind, key, cap } => Box::new(task::bags::BagQuery::new(&cx, kind, key, cap)),
            Op::BagQueryAt { uid, kind, key, cap } => Box::new(At::new(uid, Query::Bag { kind, key, cap })),
            Op::NamespaceSet { secret, public_key, key, value, seq_floor } => {
                Box::new(task::store::Store::namespace(&cx, secret, public_key, key, value, seq_floor))
            }
            Op::NamespaceRef { public_key, key, pin } => {
                Box::new(task::fetch::Fetch::record(&cx, public_key, key, pin))
            }
            Op::NamespaceRefAt { uid, public_key, key, pin } => {
                Box::new(At::new(uid, Query::Record { public_key, key, pin }))
            }
        };
        match task.start(&mut cx) {
            Progress::Done(r) => self.events.push_back((client, r)),
            Progress::Pending => {
                self.tasks.insert(id, Running { client, deadline: now + OP_TIMEOUT_US, task });
            }
        }
    }

    /// Answer a request that arrived from `from` (authenticated as `remote_static`).
    pub fn handle_request(&mut self, now: u64, from: SocketAddr, remote_static: [u8; 32], req: Request) -> Reply {
        self.now = now;
        serve::answer(&mut self.local, &mut self.rpc, now, from, remote_static, req)
    }

    /// The reply to request `token` (with the responder's static key), or None if it failed.
    pub fn handle_reply(&mut self, now: u64, token: u64, reply: Option<(Reply, [u8; 32])>) {
        self.now = now;
        let Some(s) = self.rpc.take(token) else { return };
        match reply {
            Some((reply, remote_static)) => self.on_reply(s, reply, remote_static),
            None => self.on_failure(s),
        }
    }

    fn on_reply(&mut self, s: Sent, reply: Reply, remote_static: [u8; 32]) {
        let now = self.now;
        let routing = &mut self.local.routing;
        match s.purpose {
            Purpose::Introduce => {
                if matches!(reply, Reply::Welcome { uid, .. } if uid == s.to.id) {
                    self.local.heard_from(&mut self.rpc, s.to, now);
                }
            }
            Purpose::Ping => match reply {
                Reply::Welcome { uid, .. } if uid == s.to.id => {
                    routing.insert(s.to, now);
                    routing.drop_pending(&s.to.id);
                }
                _ => routing.evict_for_pending(&s.to.id, now),
            },
            Purpose::Task { task, step } => {
                self.dispatch(task, |t, cx| t.on_reply(cx, step, s.to, remote_static, reply));
            }
        }
    }

    fn on_failure(&mut self, s: Sent) {
        self.rpc.counters.requests_failed += 1;
        match s.purpose {
            Purpose::Introduce => {}
            Purpose::Ping => self.local.routing.evict_for_pending(&s.to.id, self.now),
            Purpose::Task { task, step } => {
                self.local.forget(&s.to);
                self.dispatch(task, |t, cx| t.on_failure(cx, step, s.to));
            }
        }
    }

    /// Hand an event to task `id` (gone already: the event is dropped) and finish it if done.
    fn dispatch(&mut self, id: u64, f: impl FnOnce(&mut dyn Task, &mut Cx) -> Progress) {
        let Some(run) = self.tasks.get_mut(&id) else { return };
        let mut cx = Cx::new(self.now, id, &mut self.local, &mut self.rpc);
        if let Progress::Done(r) = f(&mut *run.task, &mut cx) {
            self.finish(id, r);
        }
    }

    fn finish(&mut self, id: u64, r: OpResult) {
        let removed = self.tasks.remove(&id);
        if let Some(run) = removed {
            self.events.push_back((run.client, r));
        }
    }

    /// Time passed: fail overdue requests, let lookups pass stragglers, expire data.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        for token in self.rpc.overdue(now) {
            self.handle_reply(now, token, None);
        }
        let late: Vec<u64> = self.tasks.iter().filter(|(_, r)| now >= r.deadline).map(|(i, _)| *i).collect();
        for id in late {
            self.finish(id, OpResult::Failed(Error::Unreachable("operation timed out".into())));
        }
        let ids: Vec<u64> = self.tasks.keys().copied().collect();
        for id in ids {
            self.dispatch(id, |t, cx| t.progress(cx));
        }
        if now >= self.next_expire {
            self.local.store.expire(now);
            self.next_expire = now + EXPIRE_EVERY_US;
        }
    }
}
