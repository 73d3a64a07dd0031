//! What every task shares: the `Task` trait, the context `Cx` it handles events in, and
//! the steps most tasks take (driving a lookup, judging its replies, choosing holders).

use crate::consts::K;
use crate::core::local::Local;
use crate::core::lookup::Lookup;
use crate::core::op::OpResult;
use crate::core::rpc::{Purpose, Rpc, Step};
use crate::id::{Contact, Id};
use crate::store::kept::Published;
use crate::wire::{Reply, Request};

/// Where a task is after an event.
pub(crate) enum Progress {
    Pending,
    Done(OpResult),
}

/// What a task may use while it handles one event: the peer's own state, and a way to send.
pub(crate) struct Cx<'a> {
    pub now: u64,
    task: u64,
    pub local: &'a mut Local,
    rpc: &'a mut Rpc,
}

impl<'a> Cx<'a> {
    pub fn new(now: u64, task: u64, local: &'a mut Local, rpc: &'a mut Rpc) -> Cx<'a> {
        Cx { now, task, local, rpc }
    }

    /// Send `request` to a known contact for this task's `step`.
    pub fn send(&mut self, step: Step, to: Contact, request: Request) {
        self.rpc.send(self.now, Purpose::Task { task: self.task, step }, to, request);
    }

    /// Send without an introduction, to whatever key answers when `expected_static` is None.
    pub fn send_raw(&mut self, to: Contact, expected_static: Option<[u8; 32]>, request: Request) {
        self.rpc.send_raw(self.now, Purpose::Task { task: self.task, step: Step::Final }, to, expected_static, request);
    }

    /// The next contact `lookup` wants asked now, if any (its marks from our measured RTTs).
    pub fn ask_next(&self, lookup: &mut Lookup) -> Option<Contact> {
        lookup.next(self.now, &self.rpc.rtt)
    }

    /// Our `iam`.
    pub fn iam(&self) -> Request {
        self.rpc.iam()
    }

    /// `c` answered as asked at its address with its key: alive. A contact of the routing
    /// table is refreshed there; any other joins only once it answers our `iam` with its uid
    /// (the introduction `Rpc::send` sent ahead of the first request), since whoever named
    /// it may have lied about its uid.
    pub fn trust(&mut self, c: Contact) {
        self.local.refresh(self.rpc, c, self.now);
    }

    /// `c` answered with something it was not asked for, or a lie: drop it.
    pub fn distrust(&mut self, c: &Contact) {
        self.local.forget(c);
        self.rpc.unprove(c);
    }

    /// A lookup of `target` until its `want` nearest have answered, seeded with our K nearest.
    pub fn lookup(&self, target: Id, want: usize) -> Lookup {
        let routing = &self.local.routing;
        Lookup::new(self.local.me, target, want, routing.closest(&target, K), *routing.diversity())
    }
}

/// What every task does.
pub(crate) trait Task: Send {
    /// Begin: send the first requests, or finish at once.
    fn start(&mut self, cx: &mut Cx) -> Progress {
        self.progress(cx)
    }
    /// `from` (authenticated as `remote_static`) answered the request this task sent at `step`.
    fn on_reply(&mut self, cx: &mut Cx, step: Step, from: Contact, remote_static: [u8; 32], reply: Reply) -> Progress;
    /// The request this task sent to `to` at `step` failed.
    fn on_failure(&mut self, cx: &mut Cx, step: Step, to: Contact) -> Progress;
    /// Look again: ask what can be asked now, finish if done. The core calls it as time
    /// passes (a slow request no longer holds a lookup slot); tasks call it after each event.
    fn progress(&mut self, cx: &mut Cx) -> Progress;
    /// What the caller's peer republishes once this task succeeded (stores only).
    fn publication(&self) -> Option<Published> {
        None
    }
}

/// Ask whatever `lookup` wants asked (`ask` builds the request for its target), as step
/// `Lookup(index)`. True when the lookup has finished.
pub(crate) fn drive(cx: &mut Cx, lookup: &mut Lookup, index: usize, ask: &dyn Fn(Id) -> Request) -> bool {
    while let Some(c) = cx.ask_next(lookup) {
        cx.send(Step::Lookup(index), c, ask(lookup.target()));
    }
    lookup.is_finished(cx.now)
}

/// A lookup reply that names contacts feeds them to `lookup` and trusts its sender; any other
/// reply is given back for the task to judge.
pub(crate) fn take_contacts(cx: &mut Cx, lookup: &mut Lookup, from: Contact, reply: Reply) -> Option<Reply> {
    match reply {
        Reply::Peers(named) => {
            lookup.on_answer(&from, cx.local.known(named));
            cx.trust(from);
            None
        }
        other => Some(other),
    }
}

/// A lookup reply that was not what was asked, or a lie: it counts as a failure, and its
/// sender leaves the routing table.
pub(crate) fn refuse(cx: &mut Cx, lookup: &mut Lookup, from: &Contact) {
    lookup.on_failure(from);
    cx.distrust(from);
}

/// Where a record goes (or is read from) once `lookup` has finished (PROTOCOL.md §6): the
/// `replication` nearest peers that answered; when we are among them we hold a copy in place
/// of the farthest, so exactly `replication` peers hold it. Returns (others, us too).
pub(crate) fn holders(cx: &Cx, lookup: &Lookup) -> (Vec<Contact>, bool) {
    let want = cx.local.replication;
    let mut targets = lookup.answered(want);
    let target = lookup.target();
    let mine = cx.local.me.distance(&target);
    let local = targets.len() < want || targets.last().is_some_and(|c| mine < c.id.distance(&target));
    if local && targets.len() >= want {
        targets.truncate(want - 1);
    }
    (targets, local)
}

/// The requests a task sends once its lookup is over (stores, queries), counted until each
/// has been answered or has failed. Nothing is out while the lookup runs.
#[derive(Default)]
pub(crate) struct Fanout(Option<usize>);

impl Fanout {
    /// Whether the requests have gone out (the lookup is over).
    pub fn started(&self) -> bool {
        self.0.is_some()
    }

    /// Send `request` to each of `targets` as the task's final step.
    pub fn send(&mut self, cx: &mut Cx, targets: Vec<Contact>, request: Request) {
        self.0 = Some(targets.len());
        for c in targets {
            cx.send(Step::Final, c, request.clone());
        }
    }

    /// `n` more requests sent earlier are counted as out too.
    pub fn add(&mut self, n: usize) {
        if let Some(m) = &mut self.0 {
            *m += n;
        }
    }

    /// One request answered or failed (`one`), or none: true once none is out any more.
    pub fn settle(&mut self, one: bool) -> bool {
        let Some(n) = &mut self.0 else { return false };
        *n = n.saturating_sub(one as usize);
        *n == 0
    }
}
