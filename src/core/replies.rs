//! Replies, failures and timers: what moves operations along.

use super::*;

impl Core {
    // ---- replies and failures -------------------------------------------------------------

    /// The reply to request `token` (with the responder's static key), or None if it failed.
    pub fn handle_reply(&mut self, now: u64, token: u64, reply: Option<(Reply, [u8; 32])>) {
        self.now = now;
        let Some(s) = self.sent.remove(&token) else { return };
        shrink(&mut self.sent);
        match reply {
            Some((reply, remote_static)) => self.on_reply(now, s, reply, remote_static),
            None => self.on_failure(now, s),
        }
    }

    pub(super) fn on_reply(&mut self, now: u64, s: Sent, reply: Reply, remote_static: [u8; 32]) {
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
                        if sign::verify(&r) && pin.is_none_or(|s| s == signature) {
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

    pub(super) fn final_reply(&mut self, id: u64, ok: bool) {
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

    pub(super) fn on_lookup_reply(&mut self, now: u64, id: u64, i: usize, from: Contact, reply: Reply) {
        let Some(p) = self.ops.get_mut(&id) else { return };
        let Phase::Lookup(lookups) = &mut p.phase else { return };
        let Some(l) = lookups.get_mut(i) else { return };
        let mut good = true;
        match (&p.op, reply) {
            (_, Reply::Peers(contacts)) => {
                // A uid we know keeps the address and key we know it by (SPEC 3): a reply
                // naming it with another key must not steer the lookup elsewhere.
                let routing = &self.routing;
                l.on_answer(&from, contacts.into_iter().map(|c| routing.get(&c.id).unwrap_or(c)))
            }
            (Op::Ref { key }, Reply::Value(v)) => {
                if Id::hash(&v) == *key {
                    l.on_answer(&from, []);
                    p.value = Some(v);
                } else {
                    // A value that does not hash to its key is a lie: drop it and that peer.
                    l.on_failure(&from);
                    good = false;
                }
            }
            (
                Op::NamespaceSet { public_key, key, .. } | Op::NamespaceRef { public_key, key, .. },
                Reply::Namespace { value, signature, seq },
            ) => {
                let pin = if let Op::NamespaceRef { pin, .. } = p.op { pin } else { None };
                let r = NamespaceRecord { public_key: *public_key, key: *key, value, signature, seq };
                if sign::verify(&r) {
                    l.on_answer(&from, []);
                    if pin.is_none_or(|s| s == signature) && p.best.is_none_or(|b| sign::newer(&r, &b)) {
                        p.best = Some(r);
                    }
                } else {
                    l.on_failure(&from);
                    good = false;
                }
            }
            _ => {
                l.on_failure(&from);
                good = false;
            }
        }
        if good {
            self.heard_from(from, now);
        } else {
            self.forget(&from);
        }
        // A found value ends a ref at once; a found uid ends an `_at` search.
        let p = self.ops.get_mut(&id).expect("op exists");
        let done = match p.op {
            Op::Ref { .. } => p.value.is_some(),
            Op::BagQueryAt { uid, .. } | Op::NamespaceRefAt { uid, .. } => {
                matches!(&p.phase, Phase::Lookup(ls) if ls[0].answered_by(&uid).is_some())
            }
            _ => false,
        };
        if done {
            self.lookups_finished(now, id);
        } else {
            self.advance(now, id);
        }
    }

    pub(super) fn on_failure(&mut self, now: u64, s: Sent) {
        self.counters.requests_failed += 1;
        match s.purpose {
            Purpose::Connect => self.final_reply(s.op, false),
            Purpose::Introduce => {}
            Purpose::Ping => self.routing.evict_for_pending(&s.to.id, now),
            Purpose::Lookup(i) => {
                self.forget(&s.to);
                if let Some(Pending { phase: Phase::Lookup(ls), .. }) = self.ops.get_mut(&s.op) {
                    if let Some(l) = ls.get_mut(i) {
                        l.on_failure(&s.to);
                    }
                }
                self.advance(now, s.op);
            }
            Purpose::Final => {
                self.forget(&s.to);
                self.final_reply(s.op, false);
            }
        }
    }

    /// Time passed: fail overdue requests, let lookups pass stragglers, expire data.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        let overdue: Vec<u64> =
            self.sent.iter().filter(|(_, s)| now >= s.at + REQUEST_TIMEOUT_US).map(|(t, _)| *t).collect();
        for t in overdue {
            self.handle_reply(now, t, None);
        }
        let late: Vec<u64> = self.ops.iter().filter(|(_, p)| now >= p.deadline).map(|(i, _)| *i).collect();
        for id in late {
            self.finish(id, OpResult::Failed(Error::Unreachable("operation timed out".into())));
        }
        let lookups: Vec<u64> =
            self.ops.iter().filter(|(_, p)| matches!(p.phase, Phase::Lookup(_))).map(|(i, _)| *i).collect();
        for id in lookups {
            self.advance(now, id);
        }
        if now >= self.next_expire {
            self.store.expire(now);
            self.next_expire = now + EXPIRE_EVERY_US;
        }
    }

    /// Drop a contact that failed us, but only the one we know: a failure reaching a uid at
    /// an address or key someone else named must not evict the real contact.
    pub(super) fn forget(&mut self, c: &Contact) {
        if self.routing.get(&c.id) == Some(*c) {
            self.routing.remove(&c.id);
        }
    }
}
