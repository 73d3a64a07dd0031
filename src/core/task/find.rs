//! Find nodes: one lookup of a target, ending with the nearest contacts that answered.

use super::shared::{drive, refuse, take_contacts, Cx, Progress, Task};
use crate::consts::K;
use crate::core::lookup::Lookup;
use crate::core::op::OpResult;
use crate::core::rpc::Step;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::wire::{Reply, Request};

pub(crate) struct Find {
    lookup: Lookup,
}

impl Find {
    pub fn new(cx: &Cx, target: Id) -> Find {
        Find { lookup: cx.lookup(target, K) }
    }

}

impl Task for Find {
    fn progress(&mut self, cx: &mut Cx) -> Progress {
        if !drive(cx, &mut self.lookup, 0, &|key| Request::Peers { key }) {
            return Progress::Pending;
        }
        let l = &self.lookup;
        Progress::Done(OpResult::Nodes { contacts: l.answered(K), rounds: l.rounds(), sent: l.sent })
    }

    fn start(&mut self, cx: &mut Cx) -> Progress {
        if cx.local.routing.is_empty() {
            return Progress::Done(no_known_peer());
        }
        self.progress(cx)
    }

    fn on_reply(&mut self, cx: &mut Cx, _: Step, from: Contact, _: [u8; 32], reply: Reply) -> Progress {
        if take_contacts(cx, &mut self.lookup, from, reply).is_some() {
            refuse(cx, &mut self.lookup, &from);
        }
        self.progress(cx)
    }

    fn on_failure(&mut self, cx: &mut Cx, _: Step, to: Contact) -> Progress {
        self.lookup.on_failure(&to);
        self.progress(cx)
    }
}

/// A lookup with an empty routing table has nobody to ask.
pub(crate) fn no_known_peer() -> OpResult {
    OpResult::Failed(Error::Unreachable("no known peer: connect to one first".into()))
}
