//! Answering the requests of other peers (PROTOCOL.md §4, §6).

use crate::consts::{K, MAX_BAG_REPLY};
use crate::core::local::Local;
use crate::core::rpc::Rpc;
use crate::id::{Contact, Id};
use crate::sign::ns_target;
use crate::store::Origin;
use crate::wire::{Reply, Request};
use std::net::SocketAddr;

/// The answer to `req`, which arrived from `from` (authenticated as `remote_static`).
pub(crate) fn answer(
    local: &mut Local,
    rpc: &mut Rpc,
    now: u64,
    from: SocketAddr,
    remote_static: [u8; 32],
    req: Request,
) -> Reply {
    rpc.counters.count_received(&req);
    match req {
        Request::Iam { uid, port } => {
            // A program-supplied transport has no keys: there the address is all we check.
            if let Some(port) = port {
                let c = Contact { id: uid, addr: SocketAddr::new(from.ip(), port), static_key: remote_static };
                local.introduced_itself(rpc, c, now);
            }
            Reply::Welcome { ip: from.ip(), port: from.port(), uid: local.me }
        }
        Request::Peers { key } => Reply::Peers(local.routing.closest(&key, K)),
        Request::Set { value, lifetime } => {
            let key = Id::hash(&value);
            let expires_at = local.expiry(now, lifetime);
            let fits = value.len() <= local.max_value;
            let origin = Origin::remote(&remote_static, from.ip(), local.routing.diversity());
            Reply::Bool(fits && local.accepts(&key) && local.store.put_value(key, value, now, expires_at, origin))
        }
        Request::Ref { key } => match local.store.get_value(&key, now) {
            Some(v) => Reply::Value(v),
            None => Reply::Peers(local.routing.closest(&key, K)),
        },
        Request::BagAdd { key, value } => {
            let publisher = publisher_of(from, remote_static);
            Reply::Bool(local.accepts(&key) && local.store.bag_add(key, value, publisher, now))
        }
        Request::BagQuery { kind, key } => Reply::Bag(local.bag(kind, &key, MAX_BAG_REPLY, now)),
        Request::NamespaceSet { record: r, lifetime } => {
            let target = ns_target(&r.public_key, &r.key);
            let expires_at = local.expiry(now, lifetime);
            let origin = Origin::remote(&remote_static, from.ip(), local.routing.diversity());
            Reply::Bool(local.accepts(&target) && local.store.namespace_put(r, now, expires_at, origin).is_ok())
        }
        Request::NamespaceRef { public_key, key } => match local.store.namespace_get(&public_key, &key, now) {
            Some(r) => Reply::Namespace { value: r.value, signature: r.signature, seq: r.seq },
            None => Reply::Peers(local.routing.closest(&ns_target(&public_key, &key), K)),
        },
    }
}

/// Who published a bag entry: the authenticated static key, or the address on a
/// program-supplied transport (which has no keys).
fn publisher_of(from: SocketAddr, remote_static: [u8; 32]) -> [u8; 32] {
    if remote_static != [0; 32] {
        return remote_static;
    }
    Id::hash(from.to_string().as_bytes()).0
}
