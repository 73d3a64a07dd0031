use super::*;
use crate::store::kept::PublishedKey;
use crate::wire::NamespaceRecord;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh directory name under the system temp directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("peer-persist-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn contact(n: u8, addr: &str) -> Contact {
    Contact { id: Id([n; 32]), addr: addr.parse::<SocketAddr>().unwrap(), static_key: [n ^ 0xff; 32] }
}

fn record(n: u8, seq: u64) -> NamespaceRecord {
    NamespaceRecord { public_key: [n; 32], key: [n + 1; 32], value: [n + 2; 32], signature: [n + 3; 64], seq }
}

fn value(bytes: &[u8]) -> Published {
    Published::Value(bytes.into())
}

#[test]
fn round_trip_of_everything() {
    let t = TempDir::new("round");
    let identity = Identity { uid: Id([7; 32]), noise_secret: [9; 32] };
    let contacts = vec![contact(1, "192.0.2.1:4000"), contact(2, "[2001:db8::1]:5000"), contact(3, "[fe80::1%2]:6")];
    let big: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let held = vec![
        Held::Value { key: Id([4; 32]), value: big.clone().into(), expires_at: 2_000 },
        Held::Value { key: Id([5; 32]), value: Vec::new().into(), expires_at: 3_000 },
        Held::Record { record: record(10, 42), expires_at: 4_000 },
    ];
    let published = vec![
        value(b"second"),
        Published::BagEntry { key: Id([20; 32]), value: [21; 32] },
        Published::Record(record(30, 1)),
        value(&big),
        value(b"first"),
    ];
    {
        let mut db = Db::open(&t.0).unwrap();
        let empty = db.load(0).unwrap();
        assert!(empty.identity.is_none() && empty.contacts.is_empty());
        assert!(empty.held.is_empty() && empty.published.is_empty());
        db.save_identity(&identity).unwrap();
        db.save_contacts(&[contact(9, "10.0.0.9:9")]).unwrap();
        db.save_contacts(&contacts).unwrap();
        let changes: Vec<Change> = (held.iter().cloned().map(Change::Held))
            .chain(published.iter().cloned().map(Change::Published))
            .collect();
        db.apply(&changes, true).unwrap();
    }
    let mut db = Db::open(&t.0).unwrap();
    let saved = db.load(1_000).unwrap();
    assert_eq!(saved.identity, Some(identity));
    let mut got = saved.contacts.clone();
    got.sort_by_key(|c| c.id);
    assert_eq!(got, contacts, "the second snapshot replaced the first");
    assert_eq!(saved.held, held);
    assert_eq!(saved.published, published, "in publish order");
}

#[test]
fn load_skips_and_deletes_expired() {
    let t = TempDir::new("expired");
    let mut db = Db::open(&t.0).unwrap();
    let live_v = Held::Value { key: Id([1; 32]), value: b"live".as_slice().into(), expires_at: 101 };
    let dead_v = Held::Value { key: Id([2; 32]), value: b"dead".as_slice().into(), expires_at: 100 };
    let live_r = Held::Record { record: record(3, 1), expires_at: 500 };
    let dead_r = Held::Record { record: record(6, 1), expires_at: 50 };
    let all = [&live_v, &dead_v, &live_r, &dead_r].map(|h| Change::Held(h.clone()));
    db.apply(&all, false).unwrap();
    assert_eq!(db.load(0).unwrap().held.len(), 4, "nothing expired yet");
    assert_eq!(db.load(100).unwrap().held, vec![live_v.clone(), live_r.clone()]);
    // Deleted, not just skipped: a load at an earlier time no longer sees them.
    assert_eq!(db.load(0).unwrap().held, vec![live_v, live_r]);
}

#[test]
fn deletions_and_replacements() {
    let t = TempDir::new("delete");
    let mut db = Db::open(&t.0).unwrap();
    let rec = |seq| Published::Record(record(40, seq));
    let changes = vec![
        Change::Held(Held::Value { key: Id([1; 32]), value: b"a".as_slice().into(), expires_at: 10 }),
        Change::Held(Held::Record { record: record(2, 1), expires_at: 10 }),
        Change::Published(value(b"x")),
        Change::Published(rec(1)),
        Change::Published(value(b"y")),
        Change::Published(Published::BagEntry { key: Id([5; 32]), value: [6; 32] }),
    ];
    db.apply(&changes, false).unwrap();
    let more = vec![
        Change::HeldGone(HeldKey::Value(Id([1; 32]))),
        // A refresh of the held record: the later expiry replaces the earlier.
        Change::Held(Held::Record { record: record(2, 2), expires_at: 20 }),
        Change::Unpublished(PublishedKey::Value(Id::hash(b"x"))),
        Change::Unpublished(PublishedKey::BagEntry(Id([5; 32]), [6; 32])),
        // Not there: a no-op.
        Change::Unpublished(PublishedKey::BagEntry(Id([5; 32]), [7; 32])),
        // A newer record under the same (public key, key) moves to the end.
        Change::Published(rec(2)),
        Change::Published(value(b"z")),
    ];
    db.apply(&more, true).unwrap();
    let saved = db.load(0).unwrap();
    assert_eq!(saved.held, vec![Held::Record { record: record(2, 2), expires_at: 20 }]);
    assert_eq!(saved.published, vec![value(b"y"), rec(2), value(b"z")]);
    // Replacing the last entry keeps it last and alone under its key.
    db.apply(&[Change::Published(value(b"z")), Change::Published(rec(3))], false).unwrap();
    assert_eq!(db.load(0).unwrap().published, vec![value(b"y"), value(b"z"), rec(3)]);
    db.apply(&[Change::HeldGone(HeldKey::Record([2; 32], [3; 32]))], false).unwrap();
    assert!(db.load(0).unwrap().held.is_empty());
}

#[test]
fn second_open_in_process_is_busy() {
    let t = TempDir::new("busy");
    let db = Db::open(&t.0).unwrap();
    assert!(matches!(Db::open(&t.0), Err(Error::Busy(m)) if m.contains(&t.0.display().to_string())));
    // Another spelling of the same directory is the same directory.
    let other = t.0.join("..").join(t.0.file_name().unwrap());
    assert!(matches!(Db::open(&other), Err(Error::Busy(_))));
    drop(db);
    let mut db = Db::open(&t.0).unwrap();
    db.load(0).unwrap();
}

#[test]
fn reopens_after_drop_without_sync() {
    let t = TempDir::new("crash");
    let durable = Change::Held(Held::Value { key: Id([1; 32]), value: b"durable".as_slice().into(), expires_at: 9 });
    let loose = Change::Held(Held::Value { key: Id([2; 32]), value: b"loose".as_slice().into(), expires_at: 9 });
    {
        let mut db = Db::open(&t.0).unwrap();
        db.save_identity(&Identity { uid: Id([3; 32]), noise_secret: [4; 32] }).unwrap();
        db.apply(std::slice::from_ref(&durable), true).unwrap();
        for _ in 0..10 {
            db.apply(std::slice::from_ref(&loose), false).unwrap();
        }
        db.save_contacts(&[contact(5, "10.1.2.3:4")]).unwrap();
    }
    let mut db = Db::open(&t.0).unwrap();
    let saved = db.load(0).unwrap();
    assert_eq!(saved.identity.map(|i| i.uid), Some(Id([3; 32])));
    assert!(saved.held.contains(&Held::Value { key: Id([1; 32]), value: b"durable".as_slice().into(), expires_at: 9 }));
    db.sync().unwrap();
}

#[test]
fn sync_makes_earlier_commits_durable() {
    let t = TempDir::new("sync");
    let mut db = Db::open(&t.0).unwrap();
    db.apply(&[Change::Published(value(b"v"))], false).unwrap();
    db.sync().unwrap();
    drop(db);
    assert_eq!(Db::open(&t.0).unwrap().load(0).unwrap().published, vec![value(b"v")]);
}

#[test]
fn damaged_file_is_a_storage_error() {
    let t = TempDir::new("garbage");
    std::fs::create_dir_all(&t.0).unwrap();
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(t.0.join(FILE_NAME), &garbage).unwrap();
    match Db::open(&t.0) {
        Err(Error::Storage(m)) => assert!(m.contains(FILE_NAME), "{m}"),
        other => panic!("expected a storage error, got {:?}", other.map(|_| ())),
    }
    // The failed open released the directory: a repaired file opens.
    std::fs::remove_file(t.0.join(FILE_NAME)).unwrap();
    Db::open(&t.0).unwrap();
}

#[test]
fn damaged_pages_are_a_storage_error() {
    let t = TempDir::new("flipped");
    {
        let mut db = Db::open(&t.0).unwrap();
        let big: Vec<u8> = vec![0x5a; 64 * 1024];
        db.apply(&[Change::Published(value(&big))], true).unwrap();
    }
    // Overwrite the middle of the file (the value's pages), keeping the header intact.
    let path = t.0.join(FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 4..n * 3 / 4] {
        *b ^= 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let r = Db::open(&t.0).and_then(|mut db| db.load(0));
    assert!(matches!(r, Err(Error::Storage(_))), "{:?}", r.map(|s| s.published.len()));
}

#[test]
fn unknown_format_is_refused() {
    let t = TempDir::new("format");
    {
        let db = Db::open(&t.0).unwrap();
        let txn = db.write(true).unwrap();
        txn.open_table(META).unwrap().insert("format", &2u32.to_be_bytes()[..]).unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(Db::open(&t.0), Err(Error::Storage(m)) if m.contains("format")));
}

#[test]
fn damaged_row_names_its_table() {
    let t = TempDir::new("row");
    let mut db = Db::open(&t.0).unwrap();
    let txn = db.write(true).unwrap();
    txn.open_table(CONTACTS).unwrap().insert(&[1u8; 32][..], &[9u8; 40][..]).unwrap();
    txn.commit().unwrap();
    assert!(matches!(db.load(0), Err(Error::Storage(m)) if m.contains("contacts")));
}

#[test]
fn row_decoders_refuse_bad_bytes() {
    for len in 0..80 {
        let b: Vec<u8> = (0..len as u8).collect();
        assert!(codec::decode_contact(&b, &b).is_none());
        let _ = codec::decode_held_record(&b, &b);
        let _ = codec::decode_held_value(&b);
        let _ = codec::decode_published(&b);
    }
    let c = contact(1, "[2001:db8::2]:7");
    let row = codec::contact(&c);
    assert_eq!(codec::decode_contact(&c.id.0, &row), Some(c));
    assert_eq!(codec::decode_contact(&c.id.0, &row[..row.len() - 1]), None);
    assert_eq!(codec::decode_published(&[3, 0]), None, "unknown tag");
}

const CHILD_ENV: &str = "PEER_PERSIST_CHILD";

/// Run only by `held_by_another_process_is_busy`, in a child process: holds the directory
/// named by the environment, then signals it with a marker file.
#[test]
#[ignore]
fn child_holds_directory() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let dir = PathBuf::from(dir);
    let _db = Db::open(&dir).unwrap();
    std::fs::write(dir.join("child-ready"), b"").unwrap();
    // Bounded, so a parent that died cannot leave it behind for long.
    std::thread::sleep(Duration::from_secs(10));
}

#[test]
fn held_by_another_process_is_busy() {
    let t = TempDir::new("child");
    std::fs::create_dir_all(&t.0).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "persist::tests::child_holds_directory", "--nocapture"])
        .env(CHILD_ENV, &t.0)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = t.0.join("child-ready");
    let start = Instant::now();
    for _ in 0..100 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ready = marker.exists();
    let r = Db::open(&t.0);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "child did not open the directory within {:?}", start.elapsed());
    assert!(matches!(r, Err(Error::Busy(_))), "{:?}", r.map(|_| ()));
    // The child is gone, and with it its lock.
    Db::open(&t.0).unwrap();
}

