//! The operations a caller asks the core for, and what each one ends with.

use crate::error::Error;
use crate::id::{Contact, Id};
use crate::wire::BagKind;
use std::net::SocketAddr;
use std::sync::Arc;

/// An operation a caller asks for (`Core::start`); its result comes out of `Core::poll_event`.
#[derive(Clone, Debug)]
pub enum Op {
    /// Greet the peer at `addr` (`iam`) and add it to the routing table.
    Connect { addr: SocketAddr },
    /// Fill the routing table: a lookup of our own uid, then one in every far bucket not full.
    Bootstrap,
    /// A plain node lookup (the simulator's measurements use it).
    FindNodes { target: Id },
    /// Store a value at the nearest peers of its SHA-256.
    Set { value: Arc<[u8]> },
    /// Find the value whose SHA-256 is `key`.
    Ref { key: Id },
    /// Publish `value` in the bag `key`.
    BagPublish { key: Id, value: [u8; 32] },
    /// At most `cap` values of the bag `key`, merged over its nearest peers.
    BagQuery { kind: BagKind, key: Id, cap: usize },
    /// At most `cap` values of the bag `key` as the peer `uid` alone holds them.
    BagQueryAt { uid: Id, kind: BagKind, key: Id, cap: usize },
    /// Sign and store a namespace record. `seq_floor`: the current Unix time in microseconds
    /// (PROTOCOL.md §6: a record's seq is never below it). The caller checked that `secret`
    /// is the secret key of `public_key`.
    NamespaceSet { secret: [u8; 32], public_key: [u8; 32], key: [u8; 32], value: [u8; 32], seq_floor: u64 },
    /// The newest valid record under (public key, key), or exactly the one signed `pin`.
    NamespaceRef { public_key: [u8; 32], key: [u8; 32], pin: Option<[u8; 64]> },
    /// As `NamespaceRef`, but as the peer `uid` alone holds it.
    NamespaceRefAt { uid: Id, public_key: [u8; 32], key: [u8; 32], pin: Option<[u8; 64]> },
}

/// What an operation ended with.
#[derive(Clone, Debug, PartialEq)]
pub enum OpResult {
    /// Connect, bootstrap and bag publish succeeded.
    Done,
    /// A node lookup's nearest contacts, with the rounds and requests it took.
    Nodes { contacts: Vec<Contact>, rounds: u32, sent: usize },
    /// A set stored its value under this key.
    Key(Id),
    /// A ref's value, or None when no peer has it.
    Value(Option<Arc<[u8]>>),
    /// A bag query's values.
    Values(Vec<[u8; 32]>),
    /// A namespace set's signature.
    Signature([u8; 64]),
    /// A namespace ref's (value, signature), or None when nothing valid was found.
    Record(Option<([u8; 32], [u8; 64])>),
    /// The operation failed.
    Failed(Error),
}
