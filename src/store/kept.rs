//! Records as they are kept across restarts (the `persist` layer saves them): what a peer
//! holds for others, what it republishes itself, and the changes to either that the core
//! reports to its driver. Times are Unix microseconds.

use crate::id::Id;
use crate::wire::NamespaceRecord;
use std::sync::Arc;

/// One record held for others, with when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    Value { key: Id, value: Arc<[u8]>, expires_at: u64 },
    Record { record: NamespaceRecord, expires_at: u64 },
}

/// What names a held record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HeldKey {
    Value(Id),
    /// (public key, key)
    Record([u8; 32], [u8; 32]),
}

/// One entry of a peer's republish list: what it stored itself with `set`, `bag-publish`
/// or `namespace-set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Value(Arc<[u8]>),
    BagEntry { key: Id, value: [u8; 32] },
    Record(NamespaceRecord),
}

/// What names a republish entry: one per value, per (bag, value), per (public key, key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PublishedKey {
    Value(Id),
    BagEntry(Id, [u8; 32]),
    Record([u8; 32], [u8; 32]),
}

impl Held {
    pub fn key(&self) -> HeldKey {
        match self {
            Held::Value { key, .. } => HeldKey::Value(*key),
            Held::Record { record, .. } => HeldKey::Record(record.public_key, record.key),
        }
    }
}

impl Published {
    pub fn key(&self) -> PublishedKey {
        match self {
            Published::Value(v) => PublishedKey::Value(Id::hash(v)),
            Published::BagEntry { key, value } => PublishedKey::BagEntry(*key, *value),
            Published::Record(r) => PublishedKey::Record(r.public_key, r.key),
        }
    }
}

/// A change to what must survive a restart, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Stored or refreshed (a later expiry).
    Held(Held),
    /// Expired or evicted.
    HeldGone(HeldKey),
    /// Added to the republish list (or replaced the entry of the same key).
    Published(Published),
    /// Left the republish list (forgotten, or pushed out by the bound).
    Unpublished(PublishedKey),
}
