//! Answering the requests of other peers.

use super::*;

impl Core {
    // ---- requests from others -------------------------------------------------------------

    /// Answer a request that arrived from `from` (authenticated as `remote_static`).
    pub fn handle_request(&mut self, now: u64, from: SocketAddr, remote_static: [u8; 32], req: Request) -> Reply {
        self.now = now;
        self.counters.requests_received += 1;
        match req {
            Request::Iam { uid, port } => {
                if let Some(port) = port {
                    let c = Contact { id: uid, addr: SocketAddr::new(from.ip(), port), static_key: remote_static };
                    self.heard_from(c, now);
                }
                Reply::Welcome { ip: from.ip(), port: from.port(), uid: self.me }
            }
            Request::Peers { key } => Reply::Peers(self.routing.closest(&key, K)),
            Request::Set { value } => {
                let key = Id::hash(&value);
                Reply::Bool(self.accepts(&key) && self.store.put_value(key, value, now))
            }
            Request::Ref { key } => match self.store.get_value(&key) {
                Some(v) => Reply::Value(v),
                None => Reply::Peers(self.routing.closest(&key, K)),
            },
            Request::BagAdd { key, value } => {
                let publisher = publisher_of(from, remote_static);
                Reply::Bool(self.accepts(&key) && self.store.bag_add(key, value, publisher, now))
            }
            Request::BagQuery { kind, key } => Reply::Bag(self.local_bag(kind, &key, MAX_BAG_REPLY, now)),
            Request::NamespaceSet(r) => {
                let target = ns_target(&r.public_key, &r.key);
                Reply::Bool(self.accepts(&target) && self.store.namespace_put(r, now).is_ok())
            }
            Request::NamespaceRef { public_key, key } => match self.store.namespace_get(&public_key, &key) {
                Some(r) => Reply::Namespace { value: r.value, signature: r.signature, seq: r.seq },
                None => Reply::Peers(self.routing.closest(&ns_target(&public_key, &key), K)),
            },
        }
    }

    /// SPEC 1: a store is accepted only by one of the K nearest peers we know, us included.
    pub(super) fn accepts(&self, target: &Id) -> bool {
        self.routing.nearer_than_me(target, K) < K
    }

    pub(super) fn local_bag(&mut self, kind: BagKind, key: &Id, max: usize, now: u64) -> Vec<BagEntry> {
        let rng = &mut self.rng;
        self.store.bag_query(key, kind, max, now, &mut || rng.gen())
    }
}
