//! The blocking API: a `Node` is a handle to a peer whose protocol core runs on one of the
//! process's shared event-loop threads (`pool`: about one per core, each hosting many peers).
//! Each call sends a command over the peer's channel, wakes its loop and waits on its own
//! one-slot reply channel, so many threads may call one handle at once. The loop drives the
//! core with one of two transports: the built-in encrypted TCP (`tcp`, over a `net::Net`
//! registered with the loop's poll) or a program-supplied one (`external`: messages in and
//! out through `ext_push_envelope` / `ext_pop_envelope`, behind Scheme's
//! `(peer uid recv send replication)`). Arguments are checked here, once, for every caller
//! (the C ABI only converts).

mod address;
mod disk;
mod driver;
mod external;
mod mailbox;
mod pool;
mod tcp;

pub use address::bind_ip;
pub use driver::Stats;

use crate::consts::{DEFAULT_REPLICATION, MAX_EXTERNAL_VALUE_SIZE, MAX_REPLICATION, MAX_VALUE_SIZE, MIN_REPLICATION};
use crate::core::{Core, CoreConfig, Op, OpResult};
use crate::diversity::Diversity;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::net::{Net, NetConfig, NetLimits};
use crate::persist::{Db, Identity};
use crate::store::MemStore;
use crate::wire::BagKind;
use crossbeam_channel::{bounded, unbounded};
use driver::Command;
use external::Outbox;
use mailbox::Mailbox;
use rand::RngCore;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Shared {
    /// Queues commands and wakes the peer's event loop; tells when the peer has stopped.
    link: pool::Link,
    closed: AtomicBool,
    /// What an external peer wants sent.
    outbox: Option<Outbox>,
}

/// A handle to a running peer. Cloning is not offered: share it behind an `Arc`. Dropping
/// it (or `close`) stops the peer and waits until it has stopped.
pub struct Node {
    shared: Arc<Shared>,
    uid: Id,
    addr: SocketAddr,
    replication: u32,
    /// Largest value this peer stores: MAX_VALUE_SIZE, or MAX_EXTERNAL_VALUE_SIZE on the
    /// program-supplied transport.
    max_value: usize,
}

fn check_replication(r: u32) -> Result<()> {
    if (MIN_REPLICATION..=MAX_REPLICATION).contains(&r) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("replication {r} is outside {MIN_REPLICATION}..{MAX_REPLICATION}")))
    }
}

fn seed() -> u64 {
    rand::rngs::OsRng.next_u64()
}

/// How a peer is made (C: `struct peer_options`). Zero fields mean the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// How many of the nearest peers hold each record: 5..=20; 0 means 5.
    pub replication: u32,
    /// Where the peer keeps its identity, contacts, held records and republish list; None:
    /// nothing is persisted.
    pub data_dir: Option<PathBuf>,
    /// How often the peer republishes what it stored (seconds); 0: one hour.
    pub republish_s: u32,
    /// How long values and namespace records live after their publisher's last store
    /// (seconds); 0: 24 hours.
    pub expire_s: u32,
    /// A short-lived client (the `peer` command's one-shot calls): it introduces itself with
    /// no port, so others do not add it to their routing tables and keep asking it after it
    /// has gone (BitTorrent's read-only nodes, BEP 43). It still looks up and stores.
    pub client: bool,
    /// The address limits of its routing table, lookups, store quotas and connections
    /// (SECURITY.md): by default loopback addresses are not counted, so a local test
    /// network on one address works; `Diversity::strict()` counts them too.
    pub diversity: Diversity,
}

impl Options {
    fn replication(&self) -> u32 {
        if self.replication == 0 {
            DEFAULT_REPLICATION
        } else {
            self.replication
        }
    }

    fn config(&self, uid: Id, listen_port: Option<u16>, static_public: [u8; 32]) -> CoreConfig {
        let mut cfg = CoreConfig::new(uid, self.replication(), listen_port, static_public, seed());
        if self.republish_s != 0 {
            cfg.republish_us = self.republish_s as u64 * 1_000_000;
        }
        if self.expire_s != 0 {
            cfg.lifetime_us = self.expire_s as u64 * 1_000_000;
        }
        cfg.diversity = self.diversity;
        cfg
    }

    /// The transport's per-address caps, as `diversity` asks: loopback exempt or not, or
    /// none at all when the limits are off.
    fn net_limits(&self) -> NetLimits {
        if self.diversity == Diversity::off() {
            return NetLimits {
                max_inbound_per_ip: usize::MAX,
                max_handshakes_per_ip: usize::MAX,
                ..NetLimits::default()
            };
        }
        NetLimits { exempt_loopback: self.diversity.exempt_loopback, ..NetLimits::default() }
    }
}

impl Node {
    /// A peer on the built-in encrypted TCP transport, listening on ip:port (0: any port).
    pub fn new(uid: Id, ip: IpAddr, port: u16, replication: u32) -> Result<Node> {
        check_replication(replication)?;
        Node::with_options(Some(uid), ip, port, &Options { replication, ..Options::default() })
    }

    /// A peer made with `options` (see `Options`). `uid` None: the one saved in the data
    /// directory, else a fresh random one (saved there). A data directory resumes the saved
    /// identity, contacts (no bootstrap address needed), held records and republish list;
    /// one held by another live peer is `Error::Busy`.
    pub fn with_options(uid: Option<Id>, ip: IpAddr, port: u16, options: &Options) -> Result<Node> {
        let replication = options.replication();
        check_replication(replication)?;
        let clock = driver::Clock::new();
        let now = clock.now();
        let (mut db, saved) = match &options.data_dir {
            Some(dir) => {
                let mut db = Db::open(dir)?;
                let saved = db.load(now)?;
                (Some(db), saved)
            }
            None => (None, Default::default()),
        };
        let identity = match (saved.identity, uid) {
            (Some(id), Some(uid)) if id.uid != uid => {
                return Err(Error::Invalid(format!("the data directory belongs to another uid ({})", id.uid)))
            }
            (Some(id), _) => id,
            (None, uid) => {
                let mut noise_secret = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut noise_secret);
                let uid = uid.unwrap_or_else(|| Id::random(&mut rand::rngs::OsRng));
                let id = Identity { uid, noise_secret };
                if let Some(db) = &mut db {
                    db.save_identity(&id)?;
                }
                id
            }
        };
        let uid = identity.uid;
        let net_cfg = NetConfig {
            limits: options.net_limits(),
            ..NetConfig::new(SocketAddr::new(ip, port), identity.noise_secret)
        };
        let lp = pool::pick()?;
        let net = Net::shared(net_cfg, lp.registry(), lp.waker())
            .map_err(|e| Error::Io(format!("cannot listen on {ip}:{port}: {e}")))?;
        let addr = net.local_addr();
        let announced = if options.client { None } else { Some(addr.port()) };
        let cfg = options.config(uid, announced, net.static_public());
        let mailbox = Arc::new(Mailbox::default());
        let mut core = Core::new(cfg, Box::new(MemStore::new(uid)), now);
        let disk = db.map(|db| {
            let contacts = saved.contacts.len();
            core.resume(now, saved.contacts, saved.held, saved.published);
            core.journal(true);
            disk::Disk::new(db, now, contacts)
        });
        let link = lp.host(Box::new(tcp::TcpPeer::new(net, core, mailbox.clone(), clock, disk)), mailbox)?;
        let shared = Shared { link, closed: AtomicBool::new(false), outbox: None };
        Ok(Node { shared: Arc::new(shared), uid, addr, replication, max_value: MAX_VALUE_SIZE })
    }

    /// A peer on a program-supplied transport: no sockets; envelopes go in through
    /// `ext_push_envelope` and out through `ext_pop_envelope`. `addr` is its address there;
    /// None: one derived from the uid (`address::derived`, PROTOCOL.md §8). It stores values
    /// of at most MAX_EXTERNAL_VALUE_SIZE bytes, so its envelopes stay within 1 MiB.
    pub fn new_external(uid: Id, addr: Option<SocketAddr>, replication: u32) -> Result<Node> {
        check_replication(replication)?;
        let addr = addr.unwrap_or_else(|| address::derived(&uid));
        let port = addr.port();
        let mut cfg = CoreConfig::new(uid, replication, Some(port), [0; 32], seed());
        cfg.max_value = MAX_EXTERNAL_VALUE_SIZE;
        let mailbox = Arc::new(Mailbox::default());
        let (out_tx, out_rx) = unbounded();
        let clock = driver::Clock::new();
        let core = Core::new(cfg, Box::new(MemStore::new(uid)), clock.now());
        let peer = external::ExternalPeer::new(core, mailbox.clone(), out_tx, addr, clock);
        let link = pool::pick()?.host(Box::new(peer), mailbox)?;
        let shared = Shared { link, closed: AtomicBool::new(false), outbox: Some(Outbox(out_rx)) };
        Ok(Node { shared: Arc::new(shared), uid, addr, replication, max_value: MAX_EXTERNAL_VALUE_SIZE })
    }

    /// The peer's uid.
    pub fn uid(&self) -> Id {
        self.uid
    }

    /// The bound (or given, for an external peer) port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the peer listens on (or its address on the program's network).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many of the nearest peers hold each record this peer writes.
    pub fn replication(&self) -> u32 {
        self.replication
    }

    /// The largest value this peer stores (`set` refuses longer ones with `TooLarge`).
    pub fn max_value(&self) -> usize {
        self.max_value
    }

    /// True once `close` was called (later calls return `Error::Closed`).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    fn send(&self, cmd: Command) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.shared.link.send(cmd)
    }

    fn call(&self, op: Op) -> Result<OpResult> {
        let (tx, rx) = bounded(1);
        self.send(Command::Op(Box::new(op), tx))?;
        match rx.recv().map_err(|_| Error::Closed)? {
            OpResult::Failed(e) => Err(e),
            r => Ok(r),
        }
    }

    /// Send `iam` to ip:port and add the peer that answers to the routing table.
    pub fn connect(&self, ip: IpAddr, port: u16) -> Result<()> {
        self.call(Op::Connect { addr: SocketAddr::new(ip, port) }).map(|_| ())
    }

    /// `connect` to `host`, an IP text or a host name: each of the name's addresses in turn
    /// (on TCP only those of this peer's family: a socket bound to one family cannot reach
    /// the other; a program's own network has no such rule), until one answers. A name that
    /// resolves to nothing (or, on TCP, to no address of this peer's family) is
    /// `Unreachable`, like an address nobody answers at.
    pub fn connect_host(&self, host: &str, port: u16) -> Result<()> {
        let family = if self.shared.outbox.is_some() { None } else { Some(&self.addr) };
        let mut last = None;
        for a in address::reachable(host, port, family)? {
            match self.connect(a.ip(), a.port()) {
                Err(e @ Error::Unreachable(_)) => last = Some(e),
                r => return r,
            }
        }
        Err(last.unwrap_or_else(|| Error::Unreachable(format!("nobody answered at {host}:{port}"))))
    }

    /// Fill the routing table from the peers already known.
    pub fn bootstrap(&self) -> Result<()> {
        self.call(Op::Bootstrap).map(|_| ())
    }

    /// Store `value` at the nearest peers of its SHA-256; returns that key.
    pub fn set(&self, value: &[u8]) -> Result<Id> {
        if value.len() > self.max_value {
            return Err(Error::TooLarge(value.len(), self.max_value));
        }
        match self.call(Op::Set { value: Arc::from(value) })? {
            OpResult::Key(k) => Ok(k),
            r => Err(unexpected(r)),
        }
    }

    /// The value whose SHA-256 is `key`, or None when no peer has it.
    pub fn get(&self, key: &Id) -> Result<Option<Vec<u8>>> {
        match self.call(Op::Ref { key: *key })? {
            OpResult::Value(v) => Ok(v.map(|v| v.to_vec())),
            r => Err(unexpected(r)),
        }
    }

    /// Publish the 32-byte `value` in the bag `key` at the key's nearest peers.
    pub fn bag_publish(&self, key: &Id, value: &[u8; 32]) -> Result<()> {
        self.call(Op::BagPublish { key: *key, value: *value }).map(|_| ())
    }

    /// At most `cap` values of the bag `key`, merged over its nearest peers.
    pub fn bag_query(&self, kind: BagKind, key: &Id, cap: usize) -> Result<Vec<[u8; 32]>> {
        values(self.call(Op::BagQuery { kind, key: *key, cap })?)
    }

    /// The local answer of the peer known as `uid`; Err(Unreachable) when it cannot be found.
    pub fn bag_query_at(&self, uid: &Id, kind: BagKind, key: &Id, cap: usize) -> Result<Vec<[u8; 32]>> {
        values(self.call(Op::BagQueryAt { uid: *uid, kind, key: *key, cap })?)
    }

    /// Sign and store a namespace record; returns its signature.
    pub fn namespace_set(
        &self,
        secret: &[u8; 32],
        public_key: &[u8; 32],
        key: &[u8; 32],
        value: &[u8; 32],
    ) -> Result<[u8; 64]> {
        if crate::sign::public_of(secret) != *public_key {
            return Err(Error::KeyMismatch);
        }
        let seq_floor = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        let op = Op::NamespaceSet { secret: *secret, public_key: *public_key, key: *key, value: *value, seq_floor };
        match self.call(op)? {
            OpResult::Signature(s) => Ok(s),
            r => Err(unexpected(r)),
        }
    }

    /// The highest-seq valid record (or exactly the one with `signature`): (value, signature).
    pub fn namespace_ref(
        &self,
        public_key: &[u8; 32],
        key: &[u8; 32],
        signature: Option<&[u8; 64]>,
    ) -> Result<Option<([u8; 32], [u8; 64])>> {
        record(self.call(Op::NamespaceRef { public_key: *public_key, key: *key, pin: signature.copied() })?)
    }

    /// As `namespace_ref`, but the local answer of the peer known as `uid` alone;
    /// Err(Unreachable) when it cannot be found.
    pub fn namespace_ref_at(
        &self,
        uid: &Id,
        public_key: &[u8; 32],
        key: &[u8; 32],
        signature: Option<&[u8; 64]>,
    ) -> Result<Option<([u8; 32], [u8; 64])>> {
        record(self.call(Op::NamespaceRefAt {
            uid: *uid,
            public_key: *public_key,
            key: *key,
            pin: signature.copied(),
        })?)
    }

    /// External transport: hand in one envelope `#(from "ip" port MESSAGE)` that arrived.
    pub fn ext_push_envelope(&self, envelope: &[u8]) -> Result<()> {
        if self.shared.outbox.is_none() {
            return Err(Error::Invalid("not a peer on a program-supplied transport".into()));
        }
        self.send(external::incoming(envelope)?)
    }

    /// External transport: the next envelope to deliver and where, waiting at most `timeout`.
    pub fn ext_pop_envelope(&self, timeout: Duration) -> Result<Option<(SocketAddr, Vec<u8>)>> {
        let Some(out) = &self.shared.outbox else {
            return Err(Error::Invalid("not a peer on a program-supplied transport".into()));
        };
        if self.is_closed() {
            return Err(Error::Closed);
        }
        out.pop(timeout)
    }

    /// Stop republishing what this peer stored under `key`: the value whose key it is, its
    /// entries in the bag `key`, its namespace records under `key`. Held copies live out their
    /// lifetime. Returns how many entries left the republish list (0: none was there).
    pub fn forget(&self, key: &Id) -> Result<usize> {
        let (tx, rx) = bounded(1);
        self.send(Command::Forget(*key, tx))?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// The peer's counters.
    pub fn stats(&self) -> Result<Stats> {
        let (tx, rx) = bounded(1);
        self.send(Command::Stats(tx))?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// Stop the peer and wait until it has stopped (its sockets closed, its data directory
    /// saved). Later calls return `Error::Closed`. Idempotent.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.shared.link.send(Command::Stop);
        self.shared.link.wait_stopped();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.close();
    }
}

fn unexpected(r: OpResult) -> Error {
    Error::Internal(format!("unexpected result {r:?}"))
}

fn values(r: OpResult) -> Result<Vec<[u8; 32]>> {
    match r {
        OpResult::Values(v) => Ok(v),
        r => Err(unexpected(r)),
    }
}

fn record(r: OpResult) -> Result<Option<([u8; 32], [u8; 64])>> {
    match r {
        OpResult::Record(r) => Ok(r),
        r => Err(unexpected(r)),
    }
}
