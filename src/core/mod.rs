//! The protocol core: a pure state machine with no sockets and no clock reads. The driver
//! (the TCP event loop, the external transport, or the simulator) feeds it time, requests,
//! replies and failures, then drains what to transmit (`poll_transmit`), finished operations
//! (`poll_event`) and when to call it next (`next_timeout`). Randomness comes from a seed.
//!
//! Inside: `local` (what this peer is, knows and holds), `rpc` (requests in flight), `rtt`
//! (round-trip times measured, and the marks a request's lookup takes from them),
//! `serve` (answering others), `task` (one type per kind of operation), `maintain` (what
//! keeps data alive: republish, re-store, handover, bucket refresh), and the Kademlia
//! pieces they use: `routing` (the table), `lookup` (one iterative lookup), `merge`.

pub(crate) mod local;
pub(crate) mod lookup;
pub(crate) mod maintain;
mod merge;
pub(crate) mod op;
pub(crate) mod routing;
pub(crate) mod rpc;
pub(crate) mod rtt;
mod serve;
pub(crate) mod task;

// The lookup's marks and their bounds, for the simulator's trace and its tests.
#[cfg(feature = "sim")]
pub use rtt::{Marks, ABANDON_MIN_US, ABANDON_US, STRAGGLER_US};
pub use maintain::MaintenanceCounters;
pub use op::{Op, OpResult};
pub use rpc::{Counters, RequestKind, Transmit};

use crate::consts::{BAG_REPUBLISH_US, BUCKET_REFRESH_US, MAX_VALUE_SIZE, OP_TIMEOUT_US, RECORD_LIFETIME_US, REPUBLISH_US};
use crate::diversity::Diversity;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::store::kept::{Change, Held, HeldKey, Published};
use crate::store::Store;
use crate::wire::{Reply, Request};
use local::Local;
use maintain::{Intervals, Maintenance, MAX_BACKGROUND};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use routing::RoutingTable;
use rpc::{release_spare, Purpose, Rpc, Sent};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use task::at::{At, Query};
use task::{Cx, Progress, Task};

/// How often stored data is swept for expiry, at most (reads never see an expired record;
/// the sweep frees the memory).
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
    /// Lifetime of the values and namespace records it stores and holds (microseconds).
    pub lifetime_us: u64,
    /// How often it republishes what it published; also its holders' re-store interval.
    pub republish_us: u64,
    /// Benchmark only: every holder re-stores each interval even when refreshed (no Kademlia
    /// optimisation), to measure what the optimisation saves.
    pub restore_always: bool,
    /// Largest value it stores for others (`set` requests with longer ones are refused).
    pub max_value: usize,
    /// The address limits of its routing table, lookups and store quotas.
    pub diversity: Diversity,
}

impl CoreConfig {
    /// A configuration with the default lifetime and intervals.
    pub fn new(uid: Id, replication: u32, listen_port: Option<u16>, static_public: [u8; 32], seed: u64) -> Self {
        CoreConfig {
            uid,
            replication,
            listen_port,
            static_public,
            seed,
            lifetime_us: RECORD_LIFETIME_US,
            republish_us: REPUBLISH_US,
            restore_always: false,
            max_value: MAX_VALUE_SIZE,
            diversity: Diversity::default(),
        }
    }
}

/// Whether `other` may be among the nearest peers to `target` along with us: it shares at
/// most 3 fewer leading bits with it than we do (a cheap filter ahead of the exact checks,
/// which walk the routing table).
fn near(me: &Id, other: &Id, target: &Id) -> bool {
    let bits = |a: &Id| a.common_prefix(target).unwrap_or(256);
    bits(other) + 3 >= bits(me)
}

/// A task at work for a caller (`client`), or for maintenance (None).
struct Running {
    client: Option<u64>,
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
    maintenance: Maintenance,
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
            routing: RoutingTable::with_diversity(cfg.uid, cfg.diversity),
            store,
            rng: StdRng::seed_from_u64(cfg.seed),
            lifetime_us: cfg.lifetime_us.max(1),
            max_value: cfg.max_value,
            joined: Vec::new(),
            departed: Vec::new(),
        };
        let republish_us = cfg.republish_us.max(1);
        let iv = Intervals {
            republish_us,
            bag_republish_us: BAG_REPUBLISH_US.min(republish_us),
            maintain_us: republish_us,
            refresh_us: BUCKET_REFRESH_US.min(republish_us),
            restore_always: cfg.restore_always,
        };
        Core {
            local,
            rpc: Rpc::new(cfg.uid, cfg.listen_port),
            tasks: BTreeMap::new(),
            events: VecDeque::new(),
            maintenance: Maintenance::new(iv, now),
            next_expire: now + Self::expire_every(cfg.lifetime_us),
            now,
        }
    }

    fn expire_every(lifetime_us: u64) -> u64 {
        EXPIRE_EVERY_US.min(lifetime_us / 10).max(1)
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

    /// The straggler and abandon marks of request `token` while it is in flight (the
    /// simulator's trace tells waits apart by them).
    #[cfg(feature = "sim")]
    pub fn request_marks(&self, token: u64) -> Option<Marks> {
        self.rpc.marks_of(token)
    }

    /// Add a contact directly (the simulator seeds tables this way).
    pub fn add_contact(&mut self, c: Contact, now: u64) {
        self.local.heard_from(&mut self.rpc, c, now);
    }

    /// What maintenance did so far.
    pub fn maintenance(&self) -> MaintenanceCounters {
        self.maintenance.counters
    }

    /// How often maintenance looks over what we hold (the WAN simulator spreads its peers'
    /// starts over one period, so their sweeps do not all fall at once).
    pub fn sweep_period(&self) -> u64 {
        self.maintenance.iv.sweep_us()
    }

    /// Entries of the republish list.
    pub fn published_len(&self) -> usize {
        self.maintenance.publications.len()
    }

    /// The republish list, oldest first.
    pub fn published(&self) -> Vec<Published> {
        self.maintenance.publications.iter().cloned().collect()
    }

    /// Stop republishing what was stored under `key` (PROTOCOL.md §6): the value whose key it
    /// is, our entries in the bag `key`, our namespace records under `key`. Returns how many
    /// entries left the republish list.
    pub fn forget(&mut self, key: &Id) -> usize {
        self.maintenance.publications.forget(key)
    }

    /// Start (or stop) queueing the changes a data directory keeps (`take_changes`).
    pub fn journal(&mut self, on: bool) {
        self.local.store.journal(on);
        self.maintenance.publications.journal(on);
    }

    /// The changes to held records and to the republish list since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let mut c = self.local.store.take_changes();
        c.extend(self.maintenance.publications.take_changes());
        c
    }

    /// Resume from a data directory: contacts back in the routing table (as long unheard
    /// from, so a full bucket pings them before keeping them over newcomers), held records
    /// back in the store, and the republish list, each entry republished within the first
    /// republish interval (at most a minute), spread so a restart is not a burst.
    pub fn resume(&mut self, now: u64, contacts: Vec<Contact>, held: Vec<Held>, published: Vec<Published>) {
        for c in contacts {
            self.local.routing.insert(c, 0);
        }
        for h in held {
            self.local.store.restore(h, now);
        }
        let spread = self.maintenance.iv.republish_us.min(60_000_000);
        for p in published {
            let due = now + self.local.rng.gen_range(0..=spread);
            self.maintenance.publications.add(p, due);
        }
    }

    /// The next request to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let mut t = self.rpc.poll_transmit()?;
        // Asked now rather than when the request was made: the table may have changed since.
        t.contact = self.rpc.addressee(t.token).is_some_and(|c| self.local.routing.get(&c.id) == Some(c));
        Some(t)
    }

    /// The addresses of routing contacts that joined (true) or left (false) the routing table
    /// since the last call, oldest first: the built-in transport keeps connections to routing
    /// contacts in preference to others (as it does those `Transmit::contact` marks).
    pub fn take_contact_changes(&mut self) -> Vec<(SocketAddr, bool)> {
        self.local.routing.take_changes()
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
        t = t.min(self.maintenance.next_timeout(self.now));
        if !self.local.joined.is_empty() {
            t = self.now;
        }
        Some(t)
    }

    /// Start `op` for the caller's `client` token; its result comes out of `poll_event`.
    pub fn start(&mut self, now: u64, client: u64, op: Op) {
        self.now = now;
        let id = self.rpc.next_id();
        let cx = Cx::new(now, id, &mut self.local, &mut self.rpc);
        let task: Box<dyn Task> = match op {
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
        self.run(id, Some(client), task);
    }

    /// Start `task` (number `id`) for `client`, or for maintenance (None).
    fn run(&mut self, id: u64, client: Option<u64>, mut task: Box<dyn Task>) {
        let mut cx = Cx::new(self.now, id, &mut self.local, &mut self.rpc);
        let r = task.start(&mut cx);
        if client.is_none() {
            self.maintenance.running += 1;
        }
        let run = Running { client, deadline: self.now + OP_TIMEOUT_US, task };
        match r {
            Progress::Done(r) => self.finished(run, r),
            Progress::Pending => {
                self.tasks.insert(id, run);
            }
        }
    }

    /// `run` ended with `r`: a caller gets it (and a successful store of its own joins the
    /// republish list); a maintenance task frees its slot.
    fn finished(&mut self, run: Running, r: OpResult) {
        let Some(client) = run.client else {
            self.maintenance.running -= 1;
            return;
        };
        if !matches!(r, OpResult::Failed(_)) {
            if let Some(p) = run.task.publication() {
                let due = self.maintenance.iv.next_republish(&p, self.now, &mut self.local.rng);
                self.maintenance.publications.add(p, due);
            }
        }
        self.events.push_back((client, r));
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
            Some((reply, remote_static)) => {
                self.rpc.rtt.sample(&s.to.id, s.at, s.marks.cold, now);
                self.on_reply(s, reply, remote_static)
            }
            None => self.on_failure(s),
        }
    }

    fn on_reply(&mut self, s: Sent, reply: Reply, remote_static: [u8; 32]) {
        let now = self.now;
        let routing = &mut self.local.routing;
        match s.purpose {
            Purpose::Introduce => {
                let proven = matches!(reply, Reply::Welcome { uid, .. } if uid == s.to.id);
                self.rpc.introduced_result(s.to, proven);
                if proven {
                    self.local.heard_from(&mut self.rpc, s.to, now);
                }
            }
            Purpose::Maintain => {}
            Purpose::Ping => match reply {
                Reply::Welcome { uid, .. } if uid == s.to.id => {
                    routing.insert(s.to, now);
                    routing.drop_pending(&s.to.id);
                }
                _ => {
                    routing.evict_for_pending(&s.to.id, now);
                    self.local.departed(s.to.id);
                }
            },
            Purpose::Task { task, step } => {
                self.dispatch(task, |t, cx| t.on_reply(cx, step, s.to, remote_static, reply));
            }
        }
    }

    fn on_failure(&mut self, s: Sent) {
        self.rpc.counters.count_failed(s.kind);
        log::debug!("{:?}: {} request to {:?} at {} failed", self.local.me, s.kind.name(), s.to.id, s.to.addr);
        match s.purpose {
            Purpose::Introduce => self.rpc.introduced_result(s.to, false),
            Purpose::Maintain => {}
            Purpose::Ping => {
                self.local.routing.evict_for_pending(&s.to.id, self.now);
                self.local.departed(s.to.id);
            }
            Purpose::Task { task, step } => {
                self.local.forget(&s.to);
                self.rpc.unprove(&s.to);
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
        if let Some(run) = self.tasks.remove(&id) {
            self.finished(run, r);
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
            self.next_expire = now + Self::expire_every(self.local.lifetime_us);
        }
        self.maintain(now);
    }

    /// Maintenance (PROTOCOL.md §6): hand records to new nearer peers, find what is due,
    /// and start as many maintenance tasks as there are free slots.
    fn maintain(&mut self, now: u64) {
        self.hand_over(now);
        let m = &mut self.maintenance;
        if now >= m.next_sweep {
            let last_sweep = m.next_sweep - m.iv.sweep_us();
            m.next_sweep = now + m.iv.sweep_us();
            let (me, iv) = (self.local.me, m.iv);
            let restores = &mut m.restores;
            let departed = std::mem::take(&mut self.local.departed);
            // Records a departed contact probably held (it was at least as near to them as
            // we are): restored now if we are their nearest holder left (checked below).
            let mut orphaned = Vec::new();
            self.local.store.visit_held(&mut |k, target, refreshed_at, expires_at| {
                if expires_at <= now {
                    return;
                }
                let due = match iv.restore_always {
                    true => iv.restore_period_passed(&me, &target, last_sweep, now),
                    false => iv.restore_due(&me, &target, refreshed_at) <= now,
                };
                if due {
                    restores.push(k);
                } else if departed.iter().any(|d| near(&me, d, &target)) {
                    orphaned.push((k, target));
                }
            });
            // When a holder disappears, the nearest remaining one restores the count.
            for (k, target) in orphaned {
                if self.local.routing.nearer_than_me(&target, 1) == 0 {
                    m.restores.push(k);
                    m.counters.departures_restored += 1;
                }
            }
            let routing = &self.local.routing;
            let depth = routing.closest(&me, 1).first().and_then(|c| me.common_prefix(&c.id)).unwrap_or(0);
            if !routing.is_empty() {
                for b in routing.stale_buckets(now.saturating_sub(iv.refresh_us), depth) {
                    if m.bucket_refreshed.len() <= b {
                        m.bucket_refreshed.resize(b + 1, None);
                    }
                    let last = &mut m.bucket_refreshed[b];
                    if last.is_some_and(|t| now < t.saturating_add(iv.refresh_us)) {
                        continue;
                    }
                    *last = Some(now);
                    m.refreshes.push(me.random_in_bucket(b, &mut self.local.rng));
                }
            }
        }
        while self.maintenance.running < MAX_BACKGROUND {
            let id = self.rpc.next_id();
            let cx = Cx::new(now, id, &mut self.local, &mut self.rpc);
            let m = &mut self.maintenance;
            let task: Box<dyn Task> = if let Some(p) = m.publications.pop_due(now, &m.iv, &mut cx.local.rng) {
                m.counters.republished += 1;
                Box::new(task::store::Store::republish(&cx, p))
            } else if let Some(k) = m.restores.pop() {
                let Some(h) = cx.local.store.get_held(&k, now) else { continue };
                // Looked at now: not due again for an interval, whatever the lookup finds.
                cx.local.store.touch(&k, now);
                m.counters.restored += 1;
                Box::new(task::store::Store::maintain(&cx, h))
            } else if let Some(target) = m.refreshes.pop() {
                m.counters.bucket_refreshes += 1;
                Box::new(task::find::Find::new(&cx, target))
            } else {
                break;
            };
            self.run(id, None, task);
        }
    }

    /// Store-on-join (the Kademlia paper, §2.5): for each record we hold, a newly joined
    /// contact that is now among its `replication` nearest (us included) gets a copy from us
    /// when we are its nearest holder (no other known contact is nearer than us), so one
    /// holder hands it over, not all.
    fn hand_over(&mut self, now: u64) {
        let (me, r) = (self.local.me, self.local.replication);
        for c in std::mem::take(&mut self.local.joined) {
            let mut due: Vec<(HeldKey, Id)> = Vec::new();
            self.local.store.visit_held(&mut |k, target, _, expires_at| {
                if expires_at > now && near(&me, &c.id, &target) {
                    due.push((k, target));
                }
            });
            for (k, target) in due {
                let (mine, theirs) = (me.distance(&target), c.id.distance(&target));
                let routing = &self.local.routing;
                let others_nearer_than_me = routing.nearer_than(&target, &mine, 2) - (theirs < mine) as usize;
                let ahead_of_them = routing.nearer_than(&target, &theirs, r) + (mine < theirs) as usize;
                if others_nearer_than_me > 0 || ahead_of_them >= r {
                    continue;
                }
                let Some(h) = self.local.store.get_held(&k, now) else { continue };
                let left = |expires_at| Some(local::lifetime_left(expires_at, now));
                let request = match h {
                    Held::Value { value, expires_at, .. } => Request::Set { value, lifetime: left(expires_at) },
                    Held::Record { record, expires_at } => Request::NamespaceSet { record, lifetime: left(expires_at) },
                };
                self.maintenance.counters.handed_over += 1;
                self.rpc.send(now, Purpose::Maintain, c, request);
            }
        }
    }
}

#[cfg(test)]
mod admission_tests;
