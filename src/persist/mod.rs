//! The on-disk store of a peer's data directory: its keys, its routing contacts, what it
//! holds for others and what it republishes, so a restarted peer comes back as itself.
//!
//! Why redb: pure Rust (no C library to build, unlike SQLite or RocksDB), ACID transactions,
//! copy-on-write B-trees with checksummed commits, so a crash at any moment leaves the last
//! committed state; and it locks the file, which tells us when another live peer holds it.
//!
//! Layout: one file, `DIR/peer.redb`, with these tables (keys and values are plain bytes with
//! the encodings of `codec`; integers big-endian):
//! - `meta`: `"format"` -> u32 (1; anything else is refused), `"identity"` -> uid (32) ++
//!   Noise static secret (32).
//! - `contacts`: uid (32) -> static key (32) ++ 4 ++ IPv4 (4) ++ port (2), or static key ++
//!   6 ++ IPv6 (16) ++ port (2) ++ flowinfo (4) ++ scope id (4).
//! - `values` (held values): key (32) -> expires_at (8) ++ the value's bytes.
//! - `records` (held namespace records): public key (32) ++ key (32) -> expires_at (8) ++
//!   value (32) ++ signature (64) ++ seq (8).
//! - `published` (the republish list): u64 position -> tag ++ entry; `published_index`: tag ++
//!   the entry's `PublishedKey` fields -> its position. Positions only grow, so reading
//!   `published` in key order gives publish order; a replacement moves to the end (it is the
//!   most recently published).
//!
//! Durability: `save_identity` and `sync` commit with `Durability::Immediate` (fsync'd when
//! the call returns). `save_contacts`, `apply(.., false)` and the deletion of expired rows at
//! load commit with `Durability::None`: redb keeps such a commit in memory and writes it with
//! the next `Immediate` commit (or when the `Db` drops: redb's close promotes pending
//! commits); a crash before that reopens the file at the last `Immediate` commit, consistent
//! but older. `apply(.., true)` is `Immediate`, and makes every earlier commit durable too.
//!
//! Locking: redb's default `ConcurrencyMode::ExclusiveWriter` locks the whole file, so a second
//! open from another process fails with `DatabaseAlreadyOpen`, reported as `Error::Busy`.
//! redb refuses a second open within one process too (on Linux), but a registry of the
//! directories open here gives that answer without relying on how each OS scopes file locks.
//!
//! Nothing here panics on what it reads: redb checks the checksums of the whole file at open
//! (a plain open may panic on a file damaged outside redb), and a row that does not decode is
//! an `Error::Storage` naming its table.

mod codec;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::id::{Contact, Id};
use crate::store::kept::{Change, Held, HeldKey, Published};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError, WriteTransaction};
use std::collections::HashSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The name of the database file inside the data directory.
pub const FILE_NAME: &str = "peer.redb";

/// The encoding of the tables; a file of another format is refused rather than misread.
const FORMAT: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CONTACTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("contacts");
const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const PUBLISHED: TableDefinition<u64, &[u8]> = TableDefinition::new("published");
const PUBLISHED_INDEX: TableDefinition<&[u8], u64> = TableDefinition::new("published_index");

/// redb's page cache. The store is read whole once at open and then only written, so a large
/// cache (redb's default is 1 GiB) would buy nothing.
const CACHE_BYTES: usize = 16 << 20;

/// The directories (canonical paths) a live `Db` of this process holds.
static OPEN_DIRS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The peer's keys, saved once when the directory is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The peer's uid.
    pub uid: Id,
    /// Its Noise static secret key.
    pub noise_secret: [u8; 32],
}

/// Everything a directory holds, read at open.
#[derive(Debug, Default)]
pub struct Saved {
    /// The keys, if they were ever saved.
    pub identity: Option<Identity>,
    /// The routing contacts of the last snapshot.
    pub contacts: Vec<Contact>,
    /// What the peer holds for others, unexpired.
    pub held: Vec<Held>,
    /// The republish list, in publish order.
    pub published: Vec<Published>,
}

/// An open data directory. Dropping it releases the directory.
pub struct Db {
    // Fields drop in order: the database (and its file lock) before the claim, so no other
    // `open` of this process gets past the registry while the file is still open.
    db: Database,
    /// The directory as given, for messages.
    dir: PathBuf,
    _claim: Claim,
}

/// Releases an entry of `OPEN_DIRS` on drop, so every early return of `open` releases it.
struct Claim(Option<PathBuf>);

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Some(set) = OPEN_DIRS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                set.remove(&p);
            }
        }
    }
}

fn storage(dir: &Path, what: &str, e: impl Display) -> Error {
    Error::Storage(format!("{}: {what}: {e}", dir.display()))
}

fn damaged(dir: &Path, table: &str) -> Error {
    Error::Storage(format!("{}: damaged row in table {table}", dir.display()))
}

fn busy(dir: &Path) -> Error {
    Error::Busy(format!("{}: the data directory is held by another live peer", dir.display()))
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

impl Db {
    /// Open (creating if needed) the data directory `dir` and its database file. A directory
    /// another live `Db` holds, in this process or another, is `Error::Busy`.
    pub fn open(dir: &Path) -> Result<Db> {
        create_dir(dir).map_err(|e| Error::Io(format!("{}: cannot create the data directory: {e}", dir.display())))?;
        let canonical = dir.canonicalize().map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
        {
            let mut open = OPEN_DIRS.lock().unwrap_or_else(|e| e.into_inner());
            if !open.get_or_insert_with(HashSet::new).insert(canonical.clone()) {
                return Err(busy(dir));
            }
        }
        let claim = Claim(Some(canonical));
        let file = dir.join(FILE_NAME);
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES).set_check_integrity_on_open(true);
        // redb documents a panic as possible on some damaged files; it must not unwind into
        // the caller (a C program's thread).
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.create(&file)));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => return Err(busy(dir)),
            Ok(Err(e)) => return Err(storage(&file, "cannot open the database", e)),
            Err(_) => return Err(storage(&file, "cannot open the database", "damaged file")),
        };
        let db = Db { db, dir: dir.to_path_buf(), _claim: claim };
        db.init()?;
        Ok(db)
    }

    /// Check the format of an existing file, or create the tables of a new one.
    fn init(&self) -> Result<()> {
        let dir = &self.dir;
        let txn = self.db.begin_read().map_err(|e| storage(dir, "read", e))?;
        match txn.open_table(META) {
            Ok(meta) => {
                let format = meta.get("format").map_err(|e| storage(dir, "meta", e))?;
                match format.as_ref().map(|g| g.value()) {
                    Some(b) if b == FORMAT.to_be_bytes() => Ok(()),
                    Some(b) => Err(Error::Storage(format!(
                        "{}: unknown format {:02x?} (this libpeer reads format {FORMAT})",
                        dir.display(),
                        b
                    ))),
                    None => Err(damaged(dir, "meta")),
                }
            }
            Err(TableError::TableDoesNotExist(_)) => {
                drop(txn);
                let txn = self.write(true)?;
                {
                    let mut meta = txn.open_table(META).map_err(|e| storage(dir, "meta", e))?;
                    meta.insert("format", &FORMAT.to_be_bytes()[..]).map_err(|e| storage(dir, "meta", e))?;
                    for (t, name) in [(CONTACTS, "contacts"), (VALUES, "values"), (RECORDS, "records")] {
                        txn.open_table(t).map_err(|e| storage(dir, name, e))?;
                    }
                    txn.open_table(PUBLISHED).map_err(|e| storage(dir, "published", e))?;
                    txn.open_table(PUBLISHED_INDEX).map_err(|e| storage(dir, "published_index", e))?;
                }
                txn.commit().map_err(|e| storage(dir, "commit", e))
            }
            Err(e) => Err(storage(dir, "meta", e)),
        }
    }

    /// A write transaction, durable (fsync'd at commit) or not.
    fn write(&self, durable: bool) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write().map_err(|e| storage(&self.dir, "write", e))?;
        let level = if durable { Durability::Immediate } else { Durability::None };
        txn.set_durability(level).map_err(|e| storage(&self.dir, "write", e))?;
        Ok(txn)
    }

    /// Read everything. Held records whose `expires_at <= now_unix_us` are skipped (and deleted).
    pub fn load(&mut self, now_unix_us: u64) -> Result<Saved> {
        let dir = &self.dir;
        let mut saved = Saved::default();
        let mut gone = Vec::new();
        {
            let txn = self.db.begin_read().map_err(|e| storage(dir, "read", e))?;
            let meta = txn.open_table(META).map_err(|e| storage(dir, "meta", e))?;
            if let Some(b) = meta.get("identity").map_err(|e| storage(dir, "meta", e))? {
                let b = b.value();
                if b.len() != 64 {
                    return Err(damaged(dir, "meta"));
                }
                let uid = Id::from_slice(&b[..32]).ok_or_else(|| damaged(dir, "meta"))?;
                let noise_secret = b[32..].try_into().map_err(|_| damaged(dir, "meta"))?;
                saved.identity = Some(Identity { uid, noise_secret });
            }

            let contacts = txn.open_table(CONTACTS).map_err(|e| storage(dir, "contacts", e))?;
            for row in contacts.iter().map_err(|e| storage(dir, "contacts", e))? {
                let (k, v) = row.map_err(|e| storage(dir, "contacts", e))?;
                let c = codec::decode_contact(k.value(), v.value()).ok_or_else(|| damaged(dir, "contacts"))?;
                saved.contacts.push(c);
            }

            let values = txn.open_table(VALUES).map_err(|e| storage(dir, "values", e))?;
            for row in values.iter().map_err(|e| storage(dir, "values", e))? {
                let (k, v) = row.map_err(|e| storage(dir, "values", e))?;
                let key = Id::from_slice(k.value()).ok_or_else(|| damaged(dir, "values"))?;
                let (expires_at, value) = codec::decode_held_value(v.value()).ok_or_else(|| damaged(dir, "values"))?;
                if expires_at <= now_unix_us {
                    gone.push(Change::HeldGone(HeldKey::Value(key)));
                } else {
                    saved.held.push(Held::Value { key, value: value.into(), expires_at });
                }
            }

            let records = txn.open_table(RECORDS).map_err(|e| storage(dir, "records", e))?;
            for row in records.iter().map_err(|e| storage(dir, "records", e))? {
                let (k, v) = row.map_err(|e| storage(dir, "records", e))?;
                let (expires_at, record) =
                    codec::decode_held_record(k.value(), v.value()).ok_or_else(|| damaged(dir, "records"))?;
                if expires_at <= now_unix_us {
                    gone.push(Change::HeldGone(HeldKey::Record(record.public_key, record.key)));
                } else {
                    saved.held.push(Held::Record { record, expires_at });
                }
            }

            let published = txn.open_table(PUBLISHED).map_err(|e| storage(dir, "published", e))?;
            for row in published.iter().map_err(|e| storage(dir, "published", e))? {
                let (_, v) = row.map_err(|e| storage(dir, "published", e))?;
                saved.published.push(codec::decode_published(v.value()).ok_or_else(|| damaged(dir, "published"))?);
            }
        }
        if !gone.is_empty() {
            // Not durable: if the deletion is lost, the next load skips them again.
            self.apply(&gone, false)?;
        }
        Ok(saved)
    }

    /// Save the identity (overwrites), durably.
    pub fn save_identity(&mut self, id: &Identity) -> Result<()> {
        let dir = &self.dir;
        let txn = self.write(true)?;
        {
            let mut meta = txn.open_table(META).map_err(|e| storage(dir, "meta", e))?;
            let mut b = [0u8; 64];
            b[..32].copy_from_slice(&id.uid.0);
            b[32..].copy_from_slice(&id.noise_secret);
            meta.insert("identity", &b[..]).map_err(|e| storage(dir, "meta", e))?;
        }
        txn.commit().map_err(|e| storage(dir, "commit", e))
    }

    /// Replace the saved routing contacts with `contacts` (a snapshot), in one transaction,
    /// not durably (a crash may keep an older snapshot).
    pub fn save_contacts(&mut self, contacts: &[Contact]) -> Result<()> {
        let dir = &self.dir;
        let txn = self.write(false)?;
        {
            let mut t = txn.open_table(CONTACTS).map_err(|e| storage(dir, "contacts", e))?;
            t.retain(|_, _| false).map_err(|e| storage(dir, "contacts", e))?;
            for c in contacts {
                t.insert(&c.id.0[..], &codec::contact(c)[..]).map_err(|e| storage(dir, "contacts", e))?;
            }
        }
        txn.commit().map_err(|e| storage(dir, "commit", e))
    }

    /// Apply `changes` in order in one write transaction. `durable`: the commit is on disk
    /// when this returns (fsync); otherwise a crash may lose it (and other non-durable
    /// commits since the last durable one), and the file reopens at that earlier commit.
    /// A `Published` entry replacing one of the same key moves to the end of the list.
    pub fn apply(&mut self, changes: &[Change], durable: bool) -> Result<()> {
        let dir = &self.dir;
        let txn = self.write(durable)?;
        {
            let mut values = txn.open_table(VALUES).map_err(|e| storage(dir, "values", e))?;
            let mut records = txn.open_table(RECORDS).map_err(|e| storage(dir, "records", e))?;
            let mut published = txn.open_table(PUBLISHED).map_err(|e| storage(dir, "published", e))?;
            let mut index = txn.open_table(PUBLISHED_INDEX).map_err(|e| storage(dir, "published_index", e))?;
            let ve = |e| storage(dir, "values", e);
            let re = |e| storage(dir, "records", e);
            let pe = |e| storage(dir, "published", e);
            for c in changes {
                match c {
                    Change::Held(Held::Value { key, value, expires_at }) => {
                        values.insert(&key.0[..], &codec::held_value(value, *expires_at)[..]).map_err(ve)?;
                    }
                    Change::Held(Held::Record { record, expires_at }) => {
                        let k = codec::record_key(&record.public_key, &record.key);
                        records.insert(&k[..], &codec::held_record(record, *expires_at)[..]).map_err(re)?;
                    }
                    Change::HeldGone(HeldKey::Value(key)) => {
                        values.remove(&key.0[..]).map_err(ve)?;
                    }
                    Change::HeldGone(HeldKey::Record(pk, key)) => {
                        records.remove(&codec::record_key(pk, key)[..]).map_err(re)?;
                    }
                    Change::Published(p) => {
                        let k = codec::published_key(&p.key());
                        if let Some(old) = index.remove(&k[..]).map_err(pe)?.map(|g| g.value()) {
                            published.remove(old).map_err(pe)?;
                        }
                        // After the removal above, so a replacement of the last entry still
                        // gets a position past every other.
                        let pos = published.last().map_err(pe)?.map_or(0, |(k, _)| k.value() + 1);
                        published.insert(pos, &codec::published(p)[..]).map_err(pe)?;
                        index.insert(&k[..], pos).map_err(pe)?;
                    }
                    Change::Unpublished(k) => {
                        let k = codec::published_key(k);
                        if let Some(old) = index.remove(&k[..]).map_err(pe)?.map(|g| g.value()) {
                            published.remove(old).map_err(pe)?;
                        }
                    }
                }
            }
        }
        txn.commit().map_err(|e| storage(dir, "commit", e))
    }

    /// Make every earlier non-durable commit durable (an empty durable commit: redb writes
    /// the pending commits with it).
    pub fn sync(&mut self) -> Result<()> {
        self.write(true)?.commit().map_err(|e| storage(&self.dir, "commit", e))
    }

    /// The data directory, as given to `open`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
