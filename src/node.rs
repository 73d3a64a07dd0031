//! The blocking API: a `Node` is a handle to a peer whose protocol core runs on its own
//! named background thread. Each call sends a command over a channel, wakes the thread
//! and waits on its own one-slot reply channel, so many threads may call one handle at once.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::wire::BagKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Counters a node keeps about itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub contacts: usize,
    pub values: usize,
    pub value_bytes: usize,
    pub bag_entries: usize,
    pub namespace_records: usize,
    pub requests_sent: u64,
    pub requests_failed: u64,
    pub requests_received: u64,
    pub open_connections: usize,
}

pub struct Node {
    _private: (),
}

impl Node {
    /// A peer on the built-in encrypted TCP transport, listening on ip:port (0: any port).
    pub fn new(uid: Id, ip: IpAddr, port: u16, replication: u32) -> Result<Node> { let _ = (uid, ip, port, replication); todo!() }
    /// A peer on a program-supplied transport: no sockets; messages go in through
    /// `ext_push` and out through `ext_pop`. `ip:port` is its address on that transport.
    pub fn new_external(uid: Id, ip: IpAddr, port: u16, replication: u32) -> Result<Node> { let _ = (uid, ip, port, replication); todo!() }
    pub fn uid(&self) -> Id { todo!() }
    /// The bound (or given, for an external peer) port.
    pub fn port(&self) -> u16 { todo!() }
    pub fn addr(&self) -> SocketAddr { todo!() }
    pub fn replication(&self) -> u32 { todo!() }
    /// Send `iam` to ip:port and add the peer that answers to the routing table.
    pub fn connect(&self, ip: IpAddr, port: u16) -> Result<()> { let _ = (ip, port); todo!() }
    /// Fill the routing table from the peers already known.
    pub fn bootstrap(&self) -> Result<()> { todo!() }
    /// Store `value` at the nearest peers of its SHA-256; returns that key.
    pub fn set(&self, value: &[u8]) -> Result<Id> { let _ = value; todo!() }
    /// The value whose SHA-256 is `key`, or None when no peer has it.
    pub fn get(&self, key: &Id) -> Result<Option<Vec<u8>>> { let _ = key; todo!() }
    pub fn bag_publish(&self, key: &Id, value: &[u8; 32]) -> Result<()> { let _ = (key, value); todo!() }
    /// At most `cap` values of the bag `key`, merged over its nearest peers.
    pub fn bag_query(&self, kind: BagKind, key: &Id, cap: usize) -> Result<Vec<[u8; 32]>> { let _ = (kind, key, cap); todo!() }
    /// The local answer of the peer known as `uid`; Err(Unreachable) when it cannot be found.
    pub fn bag_query_at(&self, uid: &Id, kind: BagKind, key: &Id, cap: usize) -> Result<Vec<[u8; 32]>> { let _ = (uid, kind, key, cap); todo!() }
    /// Sign and store a namespace record; returns its signature.
    pub fn namespace_set(&self, secret: &[u8; 32], public_key: &[u8; 32], key: &[u8; 32], value: &[u8; 32]) -> Result<[u8; 64]> { let _ = (secret, public_key, key, value); todo!() }
    /// The highest-seq valid record (or exactly the one with `signature`): (value, signature).
    pub fn namespace_ref(&self, public_key: &[u8; 32], key: &[u8; 32], signature: Option<&[u8; 64]>) -> Result<Option<([u8; 32], [u8; 64])>> { let _ = (public_key, key, signature); todo!() }
    pub fn namespace_ref_at(&self, uid: &Id, public_key: &[u8; 32], key: &[u8; 32], signature: Option<&[u8; 64]>) -> Result<Option<([u8; 32], [u8; 64])>> { let _ = (uid, public_key, key, signature); todo!() }
    /// External transport: hand in one message (datum text) that arrived from `from`.
    pub fn ext_push(&self, from: SocketAddr, msg: &[u8]) -> Result<()> { let _ = (from, msg); todo!() }
    /// External transport: the next message to send, waiting at most `timeout`.
    pub fn ext_pop(&self, timeout: Duration) -> Result<Option<(SocketAddr, Vec<u8>)>> { let _ = timeout; todo!() }
    pub fn stats(&self) -> Result<Stats> { todo!() }
    /// Stop the background thread and join it. Later calls return `Error::Closed`. Idempotent.
    pub fn close(&self) { todo!() }
}

impl Drop for Node {
    fn drop(&mut self) {}
}

#[allow(dead_code)]
fn _unused(_: Error) {}
