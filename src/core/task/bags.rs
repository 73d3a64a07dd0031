//! Bag query: a lookup of the key, then each of its holders is asked for its bag and the
//! answers are merged (PROTOCOL.md §6: popularity is the largest count any holder reports).

use super::shared::{drive, holders, refuse, take_contacts, Cx, Fanout, Progress, Task};
use crate::consts::MAX_BAG_REPLY;
use crate::core::lookup::Lookup;
use crate::core::merge::merge_bags;
use crate::core::op::OpResult;
use crate::core::rpc::Step;
use crate::id::{Contact, Id};
use crate::wire::{BagEntry, BagKind, Reply, Request};

pub(crate) struct BagQuery {
    kind: BagKind,
    key: Id,
    cap: usize,
    lookup: Lookup,
    replies: Vec<Vec<BagEntry>>,
    /// The queries, once the lookup is over.
    fanout: Fanout,
}

impl BagQuery {
    pub fn new(cx: &Cx, kind: BagKind, key: Id, cap: usize) -> BagQuery {
        let lookup = cx.lookup(key, cx.local.replication);
        BagQuery { kind, key, cap, lookup, replies: Vec::new(), fanout: Fanout::default() }
    }

    /// One query answered or failed (`one`), or none: merge once none is out.
    fn settle(&mut self, cx: &mut Cx, one: bool) -> Progress {
        if !self.fanout.settle(one) {
            return Progress::Pending;
        }
        let replies = std::mem::take(&mut self.replies);
        Progress::Done(OpResult::Values(merge_bags(self.kind, replies, self.cap, &mut cx.local.rng)))
    }
}

impl Task for BagQuery {
    fn progress(&mut self, cx: &mut Cx) -> Progress {
        if self.fanout.started() {
            return Progress::Pending;
        }
        if !drive(cx, &mut self.lookup, 0, &|key| Request::Peers { key }) {
            return Progress::Pending;
        }
        let (targets, local) = holders(cx, &self.lookup);
        if local {
            let now = cx.now;
            self.replies.push(cx.local.bag(self.kind, &self.key, MAX_BAG_REPLY, now));
        }
        self.fanout.send(cx, targets, Request::BagQuery { kind: self.kind, key: self.key });
        self.settle(cx, false)
    }

    fn on_reply(&mut self, cx: &mut Cx, step: Step, from: Contact, _: [u8; 32], reply: Reply) -> Progress {
        if step == Step::Final {
            cx.trust(from);
            if let Reply::Bag(entries) = reply {
                self.replies.push(entries);
            }
            return self.settle(cx, true);
        }
        if take_contacts(cx, &mut self.lookup, from, reply).is_some() {
            refuse(cx, &mut self.lookup, &from);
        }
        self.progress(cx)
    }

    fn on_failure(&mut self, cx: &mut Cx, step: Step, to: Contact) -> Progress {
        if step == Step::Final {
            return self.settle(cx, true);
        }
        self.lookup.on_failure(&to);
        self.progress(cx)
    }
}
