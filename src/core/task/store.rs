//! Store: a lookup of the record's target, then the record is written to its holders
//! (PROTOCOL.md §6); a small record also goes, while the lookup runs, to near candidates it
//! asks in its later rounds (`EARLY_MIN_HOP`). A set stores a value, a bag publish a bag
//! entry, a namespace set a record it signs once it has learned the highest seq the holders
//! have. Maintenance uses
//! the same task to republish (`Store::republish`) and to re-store what it holds
//! (`Store::maintain`, with the time left: at the others when we are still among the
//! holders; otherwise at the holders, then our copy goes once one of them accepted it).

use super::shared::{holders, refuse, take_contacts, Cx, Fanout, Progress, Task};
use crate::core::local::lifetime_left;
use crate::core::lookup::Lookup;
use crate::core::op::OpResult;
use crate::core::rpc::Step;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::sign;
use crate::store::kept::{Held, HeldKey, Published};
use crate::store::Origin;
use crate::wire::{NamespaceRecord, Reply, Request};
use std::sync::Arc;

/// A caller's store goes out early (with the lookup's request, before the lookup is over) to
/// a candidate learned from a reply (not one of our own contacts: they are seldom the
/// holders in a large network) that ranks among the `replication` nearest when it is asked:
/// the store's round trip then overlaps the lookup's last one (issue 12; on the WAN model,
/// 10,000 peers: set p50 606 -> 525 ms for 9% more requests; with our own contacts too,
/// 507 ms for 18% more). A store to a contact that is not among the holders in the end is
/// not waited for; the copy it leaves is handed on and dropped by that peer's re-store.
const EARLY_MIN_HOP: u32 = 1;
/// Early only for values this small: the `set` (about 4 bytes a value byte) then rides in
/// the same record as the `iam` and the lookup's request, IK message 1 for a new contact,
/// and a large value is not sent to peers that may not keep it.
const EARLY_MAX_VALUE: usize = 2048;

/// What is being stored.
// Tasks are boxed, one per operation: a large variant costs nothing worth a box of its own.
#[allow(clippy::large_enum_variant)]
enum Record {
    Value { key: Id, value: Arc<[u8]> },
    BagEntry { key: Id, value: [u8; 32] },
    /// `best`: the newest valid record seen while the lookup runs, then the one we signed.
    Namespace { secret: [u8; 32], public_key: [u8; 32], key: [u8; 32], value: [u8; 32], seq_floor: u64, best: Option<NamespaceRecord> },
    /// A record signed already (republished or re-stored as it is).
    Signed(NamespaceRecord),
}

/// Why the record is stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// A caller's store, or the publisher's republish: the full lifetime.
    Publish,
    /// A holder's re-store, with the time left (`expires_at`), never extending it.
    /// `handoff`: we are no longer among the holders, so we drop our copy once one of them
    /// has accepted it (a displaced holder would otherwise re-store it every interval).
    Maintain { expires_at: u64, handoff: bool },
}

pub(crate) struct Store {
    lookup: Lookup,
    record: Record,
    mode: Mode,
    /// The stores, once the lookup is over.
    fanout: Fanout,
    /// Holders that accepted it (we count when we hold a copy).
    accepted: usize,
    /// Stores sent while the lookup ran, and whether each has been answered (or failed).
    early: Vec<(Contact, bool)>,
    /// Once the lookup is over: the holders whose store is still out (the fanout's count).
    waiting: Vec<Contact>,
}

impl Store {
    pub fn value(cx: &Cx, value: Arc<[u8]>) -> Store {
        let key = Id::hash(&value);
        Store::new(cx, key, Record::Value { key, value })
    }

    pub fn bag_entry(cx: &Cx, key: Id, value: [u8; 32]) -> Store {
        Store::new(cx, key, Record::BagEntry { key, value })
    }

    /// The publisher's periodic store of one entry of its republish list.
    pub fn republish(cx: &Cx, p: Published) -> Store {
        match p {
            Published::Value(v) => Store::value(cx, v),
            Published::BagEntry { key, value } => Store::bag_entry(cx, key, value),
            Published::Record(r) => Store::new(cx, sign::ns_target(&r.public_key, &r.key), Record::Signed(r)),
        }
    }

    /// A holder's periodic re-store of a record it holds.
    pub fn maintain(cx: &Cx, h: Held) -> Store {
        let (target, record, expires_at) = match h {
            Held::Value { key, value, expires_at } => (key, Record::Value { key, value }, expires_at),
            Held::Record { record, expires_at } => {
                (sign::ns_target(&record.public_key, &record.key), Record::Signed(record), expires_at)
            }
        };
        let mut s = Store::new(cx, target, record);
        s.mode = Mode::Maintain { expires_at, handoff: false };
        s
    }

    pub fn namespace(
        cx: &Cx,
        secret: [u8; 32],
        public_key: [u8; 32],
        key: [u8; 32],
        value: [u8; 32],
        seq_floor: u64,
    ) -> Store {
        let best = cx.local.store.namespace_get(&public_key, &key, cx.now);
        let record = Record::Namespace { secret, public_key, key, value, seq_floor, best };
        Store::new(cx, sign::ns_target(&public_key, &key), record)
    }

    fn new(cx: &Cx, target: Id, record: Record) -> Store {
        let lookup = cx.lookup(target, cx.local.replication);
        Store { lookup, record, mode: Mode::Publish, fanout: Fanout::default(), accepted: 0, early: Vec::new(), waiting: Vec::new() }
    }

    /// When the record expires at its holders, and the lifetime (seconds) the store carries.
    fn lifetime(&self, cx: &Cx) -> (u64, u32) {
        let expires_at = match self.mode {
            Mode::Publish => cx.now.saturating_add(cx.local.lifetime_us),
            Mode::Maintain { expires_at, .. } => expires_at,
        };
        (expires_at, lifetime_left(expires_at, cx.now))
    }

    /// Keep our own copy (we are among the holders).
    fn store_here(&self, cx: &mut Cx, expires_at: u64) -> bool {
        let now = cx.now;
        let publisher = cx.local.publisher();
        let store = &mut cx.local.store;
        match &self.record {
            Record::Value { key, value } => store.put_value(*key, value.clone(), now, expires_at, Origin::LOCAL),
            Record::BagEntry { key, value } => store.bag_add(*key, *value, publisher, now),
            Record::Namespace { best: Some(r), .. } | Record::Signed(r) => {
                store.namespace_put(*r, now, expires_at, Origin::LOCAL).is_ok()
            }
            Record::Namespace { best: None, .. } => false,
        }
    }

    /// Whether stores may go out while the lookup runs: a caller's store (not maintenance,
    /// whose handoff depends on the final holders) of a small record already signed.
    fn may_store_early(&self) -> bool {
        self.mode == Mode::Publish
            && match &self.record {
                Record::Value { value, .. } => value.len() <= EARLY_MAX_VALUE,
                Record::BagEntry { .. } | Record::Signed(_) => true,
                // Signed once the lookup has seen the highest seq.
                Record::Namespace { .. } => false,
            }
    }

    /// The store request, with `lifetime` (seconds); a namespace set signs its record now,
    /// above the highest seq the lookup saw.
    fn request(&mut self, lifetime: Option<u32>) -> Request {
        match &mut self.record {
            Record::Value { value, .. } => Request::Set { value: value.clone(), lifetime },
            Record::BagEntry { key, value } => Request::BagAdd { key: *key, value: *value },
            Record::Namespace { secret, public_key, key, value, seq_floor, best } => {
                let seq = best.map_or(0, |b| b.seq.saturating_add(1)).max(*seq_floor);
                let r = sign::sign(secret, *public_key, *key, *value, seq);
                *best = Some(r);
                Request::NamespaceSet { record: r, lifetime }
            }
            Record::Signed(r) => Request::NamespaceSet { record: *r, lifetime },
        }
    }

    /// The store to `c` was answered or failed: counted if the fanout waits for it.
    fn settled_one(&mut self, cx: &mut Cx, c: &Contact) -> Progress {
        if let Some(e) = self.early.iter_mut().find(|(x, _)| x == c) {
            e.1 = true;
        }
        if !self.fanout.started() {
            return self.progress(cx);
        }
        match self.waiting.iter().position(|w| w == c) {
            Some(i) => {
                self.waiting.swap_remove(i);
                self.settle(cx, true)
            }
            None => Progress::Pending,
        }
    }

    /// One store answered or failed (`one`), or none: done once none is out.
    fn settle(&mut self, cx: &mut Cx, one: bool) -> Progress {
        if !self.fanout.settle(one) {
            return Progress::Pending;
        }
        if let (Mode::Maintain { handoff: true, .. }, true) = (self.mode, self.accepted > 0) {
            let key = match &self.record {
                Record::Value { key, .. } => Some(HeldKey::Value(*key)),
                Record::Signed(r) => Some(HeldKey::Record(r.public_key, r.key)),
                _ => None,
            };
            if let Some(k) = key {
                cx.local.store.remove(&k);
            }
        }
        Progress::Done(match &self.record {
            _ if self.accepted == 0 => OpResult::Failed(Error::NotStored),
            Record::Value { key, .. } => OpResult::Key(*key),
            Record::BagEntry { .. } | Record::Signed(_) => OpResult::Done,
            Record::Namespace { best, .. } => match best {
                Some(r) => OpResult::Signature(r.signature),
                None => OpResult::Failed(Error::Internal("namespace record not signed".into())),
            },
        })
    }
}

impl Task for Store {
    /// What the publisher republishes after this store succeeded (None for a re-store).
    fn publication(&self) -> Option<Published> {
        if self.mode != Mode::Publish {
            return None;
        }
        Some(match &self.record {
            Record::Value { value, .. } => Published::Value(value.clone()),
            Record::BagEntry { key, value } => Published::BagEntry { key: *key, value: *value },
            Record::Namespace { best, .. } => Published::Record((*best)?),
            Record::Signed(r) => Published::Record(*r),
        })
    }

    fn progress(&mut self, cx: &mut Cx) -> Progress {
        if self.fanout.started() {
            return Progress::Pending;
        }
        let target = self.lookup.target();
        let ask = match self.record {
            // A namespace set asks for the record as it goes, to sign above the highest seq.
            Record::Namespace { public_key, key, .. } => Request::NamespaceRef { public_key, key },
            _ => Request::Peers { key: target },
        };
        let may_early = self.may_store_early();
        while let Some(c) = cx.ask_next(&mut self.lookup) {
            cx.send(Step::Lookup(0), c, ask.clone());
            let want = cx.local.replication;
            if may_early && self.lookup.place(&c).is_some_and(|(rank, hop)| rank < want && hop >= EARLY_MIN_HOP) {
                let (_, secs) = self.lifetime(cx);
                let request = self.request(Some(secs));
                cx.send(Step::Final, c, request);
                self.early.push((c, false));
            }
        }
        if !self.lookup.is_finished(cx.now) {
            return Progress::Pending;
        }
        let (targets, local) = holders(cx, &self.lookup);
        // Holders stored to early are waited for while their store is out; stores to any
        // other early contact (not among the holders after all, or dead) are not.
        let early = |t: &Contact| self.early.iter().find(|(c, _)| c == t).map(|&(_, done)| done);
        self.waiting = targets.iter().copied().filter(|t| early(t) != Some(true)).collect();
        let fresh: Vec<Contact> = targets.iter().copied().filter(|t| early(t).is_none()).collect();
        if let Mode::Maintain { handoff, .. } = &mut self.mode {
            // No longer among the holders (newer peers are nearer): hand it to them, since
            // nothing says they have it, then let our copy go.
            *handoff = !local;
        }
        let (expires_at, secs) = self.lifetime(cx);
        let request = self.request(Some(secs));
        if local && self.store_here(cx, expires_at) {
            self.accepted += 1;
        }
        let waited_early = self.waiting.len() - fresh.len();
        self.fanout.send(cx, fresh, request);
        self.fanout.add(waited_early);
        self.settle(cx, false)
    }

    fn on_reply(&mut self, cx: &mut Cx, step: Step, from: Contact, _: [u8; 32], reply: Reply) -> Progress {
        if step == Step::Final {
            cx.trust(from);
            self.accepted += (reply == Reply::Bool(true)) as usize;
            return self.settled_one(cx, &from);
        }
        let l = &mut self.lookup;
        match (&mut self.record, take_contacts(cx, l, from, reply)) {
            (_, None) => {}
            (Record::Namespace { public_key, key, best, .. }, Some(Reply::Namespace { value, signature, seq })) => {
                let r = NamespaceRecord { public_key: *public_key, key: *key, value, signature, seq };
                if sign::verify(&r) {
                    l.on_answer(&from, []);
                    cx.trust(from);
                    if best.is_none_or(|b| sign::newer(&r, &b)) {
                        *best = Some(r);
                    }
                } else {
                    refuse(cx, l, &from);
                }
            }
            (_, Some(_)) => refuse(cx, l, &from),
        }
        self.progress(cx)
    }

    fn on_failure(&mut self, cx: &mut Cx, step: Step, to: Contact) -> Progress {
        if step == Step::Final {
            return self.settled_one(cx, &to);
        }
        self.lookup.on_failure(&to);
        self.progress(cx)
    }
}
