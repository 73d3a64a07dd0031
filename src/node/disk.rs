//! A peer's data directory as its driver uses it: what to load at start, and when to write
//! the core's changes (PROTOCOL.md §6, README "Persistence").
//!
//! Write policy: a change to the republish list (a caller's store that succeeded, a forget)
//! is committed durably before the caller gets its answer, so a `set` that returned ok is
//! republished after any crash. Changes to the records held for others are batched and
//! committed durably at most `FLUSH_WINDOW_US` after the first of them (or sooner past
//! `MAX_BATCH`): a `kill -9` loses at most that window of holdings, which the holders'
//! maintenance restores anyway. Routing contacts are saved with a flush when their count
//! changed, and at least every `CONTACTS_EVERY_US`.

use crate::core::Core;
use crate::error::Result;
use crate::persist::Db;
use crate::store::kept::Change;

/// Longest time a held record's change waits before it is on disk.
pub(crate) const FLUSH_WINDOW_US: u64 = 1_000_000;
/// Changes batched at most before a flush.
const MAX_BATCH: usize = 4096;
/// Routing contacts are saved at least this often (when anything changed at all).
const CONTACTS_EVERY_US: u64 = 60_000_000;

pub(crate) struct Disk {
    db: Db,
    pending: Vec<Change>,
    /// When the oldest pending change must be on disk.
    flush_by: Option<u64>,
    contacts_len: usize,
    contacts_at: u64,
}

impl Disk {
    pub fn new(db: Db, now: u64, contacts_len: usize) -> Disk {
        Disk { db, pending: Vec::new(), flush_by: None, contacts_len, contacts_at: now }
    }

    /// When the driver must wake to flush, if anything waits.
    pub fn deadline(&self) -> Option<u64> {
        self.flush_by
    }

    /// After a turn of the event loop: take the core's changes and write what is due.
    pub fn after_turn(&mut self, core: &mut Core, now: u64) -> Result<()> {
        let changes = core.take_changes();
        let publishing = changes.iter().any(|c| matches!(c, Change::Published(_) | Change::Unpublished(_)));
        if !changes.is_empty() && self.flush_by.is_none() {
            self.flush_by = Some(now + FLUSH_WINDOW_US);
        }
        self.pending.extend(changes);
        let changed = core.routing().len() != self.contacts_len;
        let contacts_due =
            (changed && now >= self.contacts_at + FLUSH_WINDOW_US) || now >= self.contacts_at + CONTACTS_EVERY_US;
        if contacts_due && self.flush_by.is_none() {
            self.flush_by = Some(now);
        }
        if publishing || self.pending.len() >= MAX_BATCH || self.flush_by.is_some_and(|t| now >= t) {
            self.flush(core, now, contacts_due)?;
        }
        Ok(())
    }

    /// Write everything pending (and the contacts when `contacts` is set), durably.
    pub fn flush(&mut self, core: &Core, now: u64, contacts: bool) -> Result<()> {
        if contacts {
            let all = core.routing().contacts();
            self.db.save_contacts(&all)?;
            self.contacts_len = all.len();
            self.contacts_at = now;
        }
        self.db.apply(&self.pending, true)?;
        self.pending.clear();
        self.flush_by = None;
        Ok(())
    }

    /// The peer stops: everything to disk, contacts included.
    pub fn close(&mut self, core: &mut Core, now: u64) -> Result<()> {
        self.pending.extend(core.take_changes());
        self.flush(core, now, true)
    }
}
