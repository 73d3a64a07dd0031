//! The `_at` queries: find the peer with a given uid (a node lookup that ends as soon as it
//! answers), then ask it alone for its bag or its namespace record.

use super::shared::{drive, refuse, take_contacts, Cx, Progress, Task};
use crate::consts::{K, MAX_BAG_REPLY};
use crate::core::lookup::Lookup;
use crate::core::op::OpResult;
use crate::core::rpc::Step;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::sign;
use crate::wire::{BagKind, NamespaceRecord, Reply, Request};

/// What the peer is asked.
pub(crate) enum Query {
    Bag { kind: BagKind, key: Id, cap: usize },
    Record { public_key: [u8; 32], key: [u8; 32], pin: Option<[u8; 64]> },
}

pub(crate) struct At {
    uid: Id,
    query: Query,
    /// Looking for the uid; None once it is asked (or known from the start).
    finding: Option<Lookup>,
}

impl At {
    pub fn new(uid: Id, query: Query) -> At {
        At { uid, query, finding: None }
    }

    /// Our own answer, when the uid is ours.
    fn local(&self, cx: &mut Cx) -> OpResult {
        let now = cx.now;
        match self.query {
            Query::Bag { kind, key, cap } => {
                OpResult::Values(cx.local.bag(kind, &key, cap.min(MAX_BAG_REPLY), now).into_iter().map(|e| e.value).collect())
            }
            Query::Record { public_key, key, pin } => OpResult::Record(
                cx.local
                    .store
                    .namespace_get(&public_key, &key, now)
                    .filter(|r| pin.is_none_or(|s| s == r.signature))
                    .map(|r| (r.value, r.signature)),
            ),
        }
    }

    fn ask(&mut self, cx: &mut Cx, c: Contact) -> Progress {
        self.finding = None;
        let request = match self.query {
            Query::Bag { kind, key, .. } => Request::BagQuery { kind, key },
            Query::Record { public_key, key, .. } => Request::NamespaceRef { public_key, key },
        };
        cx.send(Step::Final, c, request);
        Progress::Pending
    }

    /// What the peer answered.
    fn answer(&self, reply: Reply) -> OpResult {
        match (&self.query, reply) {
            (Query::Bag { cap, .. }, Reply::Bag(mut entries)) => {
                entries.truncate(*cap);
                OpResult::Values(entries.into_iter().map(|e| e.value).collect())
            }
            (&Query::Record { public_key, key, pin }, Reply::Namespace { value, signature, seq }) => {
                let r = NamespaceRecord { public_key, key, value, signature, seq };
                let ok = sign::verify(&r) && pin.is_none_or(|s| s == signature);
                OpResult::Record(ok.then_some((value, signature)))
            }
            // No record there: it answered with contacts instead.
            (Query::Record { .. }, Reply::Peers(_) | Reply::Bool(true)) => OpResult::Record(None),
            _ => unreachable("that peer did not answer"),
        }
    }
}

fn unreachable(why: &str) -> OpResult {
    OpResult::Failed(Error::Unreachable(why.into()))
}

impl Task for At {
    fn progress(&mut self, cx: &mut Cx) -> Progress {
        let Some(l) = &mut self.finding else { return Progress::Pending };
        if !drive(cx, l, 0, &|key| Request::Peers { key }) {
            return Progress::Pending;
        }
        match l.answered_by(&self.uid).or_else(|| l.find(&self.uid)) {
            Some(c) => self.ask(cx, c),
            None => Progress::Done(unreachable("no peer with that uid was found")),
        }
    }

    fn start(&mut self, cx: &mut Cx) -> Progress {
        if self.uid == cx.local.me {
            return Progress::Done(self.local(cx));
        }
        if let Some(c) = cx.local.routing.get(&self.uid) {
            return self.ask(cx, c);
        }
        if cx.local.routing.is_empty() {
            return Progress::Done(unreachable("no known peer"));
        }
        self.finding = Some(cx.lookup(self.uid, K));
        self.progress(cx)
    }

    fn on_reply(&mut self, cx: &mut Cx, step: Step, from: Contact, _: [u8; 32], reply: Reply) -> Progress {
        if step == Step::Final {
            cx.trust(from);
            return Progress::Done(self.answer(reply));
        }
        let Some(l) = &mut self.finding else { return Progress::Pending };
        if take_contacts(cx, l, from, reply).is_some() {
            refuse(cx, l, &from);
        }
        // The uid itself answered: no need to look further.
        if let Some(c) = l.answered_by(&self.uid) {
            return self.ask(cx, c);
        }
        self.progress(cx)
    }

    fn on_failure(&mut self, cx: &mut Cx, step: Step, to: Contact) -> Progress {
        if step == Step::Final {
            return Progress::Done(unreachable("that peer did not answer"));
        }
        if let Some(l) = &mut self.finding {
            l.on_failure(&to);
        }
        self.progress(cx)
    }
}
