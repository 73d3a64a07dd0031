//! Operations: starting them, pushing their lookups forward, and their final phase.

use super::*;

impl Core {
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
        let lookup =
            |core: &Core, target: Id, want: usize| Lookup::new(core.me, target, want, core.routing.closest(&target, K));
        match op {
            Op::Connect { addr } => {
                let to = Contact { id: Id::ZERO, addr, static_key: [0; 32] };
                let req = Request::Iam { uid: self.me, port: self.listen_port };
                self.send_raw(now, id, Purpose::Connect, to, None, req);
                p.phase = Phase::Final { outstanding: 1 };
            }
            Op::Bootstrap | Op::FindNodes { .. } if self.routing.is_empty() => {
                return self.events.push_back((
                    client,
                    OpResult::Failed(Error::Unreachable("no known peer: connect to one first".into())),
                ));
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
            Op::BagPublish { key, .. } | Op::BagQuery { key, .. } => {
                p.phase = Phase::Lookup(vec![lookup(self, key, want)])
            }
            Op::NamespaceSet { secret, public_key, key, .. } => {
                if sign::public_of(&secret) != public_key {
                    return self.events.push_back((client, OpResult::Failed(Error::KeyMismatch)));
                }
                p.best = self.store.namespace_get(&public_key, &key);
                p.phase = Phase::Lookup(vec![lookup(self, ns_target(&public_key, &key), want)]);
            }
            Op::NamespaceRef { public_key, key, pin } => {
                p.best = self.store.namespace_get(&public_key, &key).filter(|r| pin.is_none_or(|s| s == r.signature));
                p.phase = Phase::Lookup(vec![lookup(self, ns_target(&public_key, &key), want)]);
            }
            Op::BagQueryAt { uid, .. } | Op::NamespaceRefAt { uid, .. } => {
                if uid == self.me {
                    let r = self.local_answer_at(now, &p.op.clone());
                    return self.events.push_back((client, r));
                }
                match self.routing.get(&uid) {
                    Some(c) => {
                        p.at = Some(c);
                        self.ops.insert(id, p);
                        return self.send_final(now, id);
                    }
                    None if self.routing.is_empty() => {
                        return self
                            .events
                            .push_back((client, OpResult::Failed(Error::Unreachable("no known peer".into()))));
                    }
                    None => p.phase = Phase::Lookup(vec![lookup(self, uid, K)]),
                }
            }
        }
        self.ops.insert(id, p);
        self.advance(now, id);
    }

    pub(super) fn local_answer_at(&mut self, now: u64, op: &Op) -> OpResult {
        match *op {
            Op::BagQueryAt { kind, key, cap, .. } => OpResult::Values(
                self.local_bag(kind, &key, cap.min(MAX_BAG_REPLY), now).into_iter().map(|e| e.value).collect(),
            ),
            Op::NamespaceRefAt { public_key, key, pin, .. } => OpResult::Record(
                self.store
                    .namespace_get(&public_key, &key)
                    .filter(|r| pin.is_none_or(|s| s == r.signature))
                    .map(|r| (r.value, r.signature)),
            ),
            _ => OpResult::Failed(Error::Internal("not an _at op".into())),
        }
    }

    /// Push an op forward: ask what its lookups want asked, or move to its final phase.
    pub(super) fn advance(&mut self, now: u64, id: u64) {
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
    pub(super) fn lookups_finished(&mut self, now: u64, id: u64) {
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
            Op::BagQueryAt { uid, .. } | Op::NamespaceRefAt { uid, .. } => match lookups[0]
                .answered_by(&uid)
                .or_else(|| lookups[0].find(&uid))
            {
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

    pub(super) fn store_locally(&mut self, now: u64, id: u64) {
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

    pub(super) fn static_public_or_uid(&self) -> [u8; 32] {
        if self.static_public == [0; 32] {
            self.me.0
        } else {
            self.static_public
        }
    }

    /// Send the one request of an `_at` op to its contact.
    pub(super) fn send_final(&mut self, now: u64, id: u64) {
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
    pub(super) fn complete_final(&mut self, id: u64) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        let r = match &p.op {
            Op::Set { value } if p.accepted > 0 => OpResult::Key(Id::hash(value)),
            Op::BagPublish { .. } if p.accepted > 0 => OpResult::Done,
            Op::NamespaceSet { .. } if p.accepted > 0 => OpResult::Signature(p.signature.expect("signed")),
            Op::Set { .. } | Op::BagPublish { .. } | Op::NamespaceSet { .. } => OpResult::Failed(Error::NotStored),
            Op::BagQuery { kind, cap, .. } => {
                OpResult::Values(merge::merge_bags(*kind, std::mem::take(&mut p.bag_replies), *cap, &mut self.rng))
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

    pub(super) fn finish(&mut self, id: u64, r: OpResult) {
        let removed = self.ops.remove(&id);
        shrink(&mut self.ops);
        if let Some(p) = removed {
            self.events.push_back((p.client, r));
        }
    }
}
