//! Fetch: a lookup that reads as it goes. A `ref` asks each peer for the value and ends at
//! the first one that hashes to its key; a namespace ref asks each of the `replication`
//! nearest for the record and keeps the newest valid one (PROTOCOL.md §6).

use super::shared::{drive, refuse, take_contacts, Cx, Progress, Task};
use crate::core::lookup::Lookup;
use crate::core::op::OpResult;
use crate::core::rpc::Step;
use crate::id::{Contact, Id};
use crate::sign;
use crate::wire::{NamespaceRecord, Reply, Request};

/// What is being fetched.
// Tasks are boxed, one per operation: a large variant costs nothing worth a box of its own.
#[allow(clippy::large_enum_variant)]
enum Wanted {
    Value { key: Id },
    Record { public_key: [u8; 32], key: [u8; 32], pin: Option<[u8; 64]>, best: Option<NamespaceRecord> },
}

pub(crate) struct Fetch {
    lookup: Lookup,
    wanted: Wanted,
}

impl Fetch {
    pub fn value(cx: &Cx, key: Id) -> Fetch {
        let lookup = cx.lookup(key, cx.local.replication);
        Fetch { lookup, wanted: Wanted::Value { key } }
    }

    pub fn record(cx: &Cx, public_key: [u8; 32], key: [u8; 32], pin: Option<[u8; 64]>) -> Fetch {
        let lookup = cx.lookup(sign::ns_target(&public_key, &key), cx.local.replication);
        Fetch { lookup, wanted: Wanted::Record { public_key, key, pin, best: None } }
    }

}

impl Task for Fetch {
    fn progress(&mut self, cx: &mut Cx) -> Progress {
        let ask = |target| match self.wanted {
            Wanted::Value { .. } => Request::Ref { key: target },
            Wanted::Record { public_key, key, .. } => Request::NamespaceRef { public_key, key },
        };
        if !drive(cx, &mut self.lookup, 0, &ask) {
            return Progress::Pending;
        }
        Progress::Done(match &self.wanted {
            Wanted::Value { .. } => OpResult::Value(None),
            Wanted::Record { best, .. } => OpResult::Record(best.map(|r| (r.value, r.signature))),
        })
    }

    fn start(&mut self, cx: &mut Cx) -> Progress {
        match &mut self.wanted {
            Wanted::Value { key } => {
                if let Some(v) = cx.local.store.get_value(key, cx.now) {
                    return Progress::Done(OpResult::Value(Some(v)));
                }
            }
            Wanted::Record { public_key, key, pin, best } => {
                *best = cx.local.store.namespace_get(public_key, key, cx.now).filter(|r| pin.is_none_or(|s| s == r.signature));
            }
        }
        self.progress(cx)
    }

    fn on_reply(&mut self, cx: &mut Cx, _: Step, from: Contact, _: [u8; 32], reply: Reply) -> Progress {
        let l = &mut self.lookup;
        match (&mut self.wanted, take_contacts(cx, l, from, reply)) {
            (_, None) => {}
            (Wanted::Value { key }, Some(Reply::Value(v))) if Id::hash(&v) == *key => {
                l.on_answer(&from, []);
                cx.trust(from);
                return Progress::Done(OpResult::Value(Some(v)));
            }
            (Wanted::Record { public_key, key, pin, best }, Some(Reply::Namespace { value, signature, seq })) => {
                let r = NamespaceRecord { public_key: *public_key, key: *key, value, signature, seq };
                if sign::verify(&r) {
                    l.on_answer(&from, []);
                    cx.trust(from);
                    if pin.is_none_or(|s| s == signature) && best.is_none_or(|b| sign::newer(&r, &b)) {
                        *best = Some(r);
                    }
                } else {
                    refuse(cx, l, &from);
                }
            }
            // Not what was asked, or a value that does not hash to its key: a lie.
            (_, Some(_)) => refuse(cx, l, &from),
        }
        self.progress(cx)
    }

    fn on_failure(&mut self, cx: &mut Cx, _: Step, to: Contact) -> Progress {
        self.lookup.on_failure(&to);
        self.progress(cx)
    }
}
