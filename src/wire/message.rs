//! The messages of PROTOCOL.md §4 as Rust types: requests, replies and what they carry.

use crate::consts::MAX_MESSAGE;
use crate::id::{Contact, Id};
use std::net::IpAddr;
use std::sync::Arc;

/// Largest envelope `#(from "ip" port MESSAGE)` of the program-supplied transport: a
/// `MAX_MESSAGE` message plus the longest header (`#(from "` + 39-character IPv6 + `" 65535 `
/// + `)` = 56 bytes), rounded up.
pub const MAX_ENVELOPE: usize = MAX_MESSAGE + 64;

/// Which ordering a bag query asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum BagKind {
    /// Most distinct publishers first.
    Popular,
    /// Most recently published first.
    Recent,
    /// A uniformly random sample.
    Sample,
}

/// One entry of a `bag` reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BagEntry {
    pub value: [u8; 32],
    /// Distinct publishers seen.
    pub count: u32,
    /// Age of the latest publish, in seconds.
    pub seconds: u64,
}

/// A signed namespace record as it travels (PROTOCOL.md §4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NamespaceRecord {
    pub public_key: [u8; 32],
    pub key: [u8; 32],
    pub value: [u8; 32],
    pub signature: [u8; 64],
    pub seq: u64,
}

/// Requests: sent by the dialing side only.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    /// `#(iam uid port)`, port `#f` when the sender accepts no connections.
    Iam { uid: Id, port: Option<u16> },
    /// `#(peers key)`
    Peers { key: Id },
    /// `#(set value [lifetime])`: shared, so a value stored at several peers is not copied
    /// per peer. `lifetime`: seconds the record has left (PROTOCOL.md §6); absent, the
    /// holder's full lifetime.
    Set { value: Arc<[u8]>, lifetime: Option<u32> },
    /// `#(ref key)`
    Ref { key: Id },
    /// `#(bag-add key value)`
    BagAdd { key: Id, value: [u8; 32] },
    /// `#(bag-popular key)`, `#(bag-recent key)`, `#(bag-sample key)`
    BagQuery { kind: BagKind, key: Id },
    /// `#(namespace-set public-key key value signature seq [lifetime])`
    NamespaceSet { record: NamespaceRecord, lifetime: Option<u32> },
    /// `#(namespace-ref public-key key)`
    NamespaceRef { public_key: [u8; 32], key: [u8; 32] },
}

/// Replies: sent by the accepting side, in request order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reply {
    /// `#(welcome "ip" port uid)`
    Welcome { ip: IpAddr, port: u16, uid: Id },
    /// `#(peer #(uid "ip" port static-key) ...)`
    Peers(Vec<Contact>),
    /// `#t` / `#f`
    Bool(bool),
    /// `#(value bytevector)`
    Value(Arc<[u8]>),
    /// `#(bag #(value count seconds) ...)`
    Bag(Vec<BagEntry>),
    /// `#(namespace value signature seq)`: public key and key are those of the request.
    Namespace { value: [u8; 32], signature: [u8; 64], seq: u64 },
}
