//! What a peer keeps for others: content-addressed values, bags and namespace records.
//! Behind the small `Store` trait so a persistent store can replace `MemStore` later.
//! Time comes in as an argument (microseconds on the core's clock); nothing here reads a clock.

use crate::id::Id;
use crate::wire::{BagEntry, BagKind, NamespaceRecord};

/// Why a namespace record was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NamespaceRefusal {
    BadSignature,
    /// A record with a higher seq (or equal seq and a winning signature) is stored.
    Stale,
    Full,
}

pub trait Store: Send {
    /// Store `value` under `key` (the caller checked key == SHA-256(value)). False when full.
    fn put_value(&mut self, key: Id, value: Vec<u8>, now: u64) -> bool;
    fn get_value(&self, key: &Id) -> Option<Vec<u8>>;
    /// Record that `publisher` published `value` in the bag `key` at `now`. False when the
    /// entry could not be kept (bag and total bounds, after evicting what they allow).
    fn bag_add(&mut self, key: Id, value: [u8; 32], publisher: [u8; 32], now: u64) -> bool;
    /// At most `max` live entries of the bag `key`, in the order `kind` asks for.
    /// `rand` supplies randomness for sampling (a fresh u64 each call).
    fn bag_query(&mut self, key: &Id, kind: BagKind, max: usize, now: u64, rand: &mut dyn FnMut() -> u64) -> Vec<BagEntry>;
    /// Verify and store a namespace record under SPEC 4's seq rules.
    fn namespace_put(&mut self, record: NamespaceRecord, now: u64) -> Result<(), NamespaceRefusal>;
    fn namespace_get(&self, public_key: &[u8; 32], key: &[u8; 32]) -> Option<NamespaceRecord>;
    /// Drop what has expired by `now`.
    fn expire(&mut self, now: u64);
    /// Counts for statistics: (values, value bytes, bag entries, namespace records).
    fn counts(&self) -> (usize, usize, usize, usize);
}
