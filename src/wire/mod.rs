//! The wire: the safe datum reader/writer (`datum`), typed messages and their codec
//! (`codec`), and length-prefixed framing (`frame`). SPEC sections 2 and 4.

use crate::id::{Contact, Id};
use std::net::IpAddr;

pub mod codec;
pub mod datum;
pub mod frame;

pub use codec::{
    decode_envelope, decode_message, decode_reply, decode_request, encode_envelope, encode_message, encode_reply,
    encode_request, normalize, Message,
};
pub use datum::{read_datum, write_datum, Datum, Integer, ReadError};
pub use frame::{write_frame, FrameDecoder, FrameError};

/// Largest envelope `#(from "ip" port MESSAGE)` of the program-supplied transport: a
/// `MAX_MESSAGE` message plus the longest header (`#(from "` + 39-character IPv6 + `" 65535 `
/// + `)` = 56 bytes), rounded up.
pub const MAX_ENVELOPE: usize = crate::consts::MAX_MESSAGE + 64;

/// Which ordering a bag query asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum BagKind {
    Popular,
    Recent,
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

/// A signed namespace record as it travels (SPEC 4).
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
    /// `#(set value)`
    Set { value: Vec<u8> },
    /// `#(ref key)`
    Ref { key: Id },
    /// `#(bag-add key value)`
    BagAdd { key: Id, value: [u8; 32] },
    /// `#(bag-popular key)`, `#(bag-recent key)`, `#(bag-sample key)`
    BagQuery { kind: BagKind, key: Id },
    /// `#(namespace-set public-key key value signature seq)`
    NamespaceSet(NamespaceRecord),
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
    Value(Vec<u8>),
    /// `#(bag #(value count seconds) ...)`
    Bag(Vec<BagEntry>),
    /// `#(namespace value signature seq)`: public key and key are those of the request.
    Namespace { value: [u8; 32], signature: [u8; 64], seq: u64 },
}
