//! The blocking API: a `Node` is a handle to a peer whose protocol core runs on its own
//! named background thread. Each call sends a command over a channel, wakes the thread
//! and waits on its own one-slot reply channel, so many threads may call one handle at once.
//! The thread drives the core with one of two transports: the built-in encrypted TCP
//! (`net`, a mio event loop) or a program-supplied one (messages in and out through
//! `ext_push_envelope` / `ext_pop_envelope`, behind Scheme's `(peer uid recv send replication)`).

use crate::consts::{MAX_EXT_OUTSTANDING, MAX_REPLICATION, MAX_VALUE_SIZE, MIN_REPLICATION};
use crate::core::{Core, CoreConfig, Op, OpResult, Transmit};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::net::{Net, NetConfig, NetEvent};
use crate::store::MemStore;
use crate::wire::{decode_envelope, encode_envelope, encode_reply, encode_request, BagKind, Message};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

enum Command {
    /// Boxed: a command channel's blocks hold many slots, each as large as a command.
    Op(Box<Op>, Sender<OpResult>),
    Stats(Sender<Stats>),
    /// A message that arrived on the program-supplied transport.
    Incoming(SocketAddr, Message),
    Stop,
}

struct Shared {
    tx: Sender<Command>,
    waker: Option<Arc<mio::Waker>>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// What an external peer wants sent: (destination, envelope).
    outbox: Option<Receiver<(SocketAddr, Vec<u8>)>>,
}

pub struct Node {
    shared: Arc<Shared>,
    uid: Id,
    addr: SocketAddr,
    replication: u32,
}

fn check_replication(r: u32) -> Result<()> {
    if (MIN_REPLICATION..=MAX_REPLICATION).contains(&r) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("replication {r} is outside {MIN_REPLICATION}..={MAX_REPLICATION}")))
    }
}

fn seed() -> u64 {
    rand::rngs::OsRng.next_u64()
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

impl Node {
    /// A peer on the built-in encrypted TCP transport, listening on ip:port (0: any port).
    pub fn new(uid: Id, ip: IpAddr, port: u16, replication: u32) -> Result<Node> {
        check_replication(replication)?;
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let net = Net::new(NetConfig { bind: SocketAddr::new(ip, port), static_secret: secret })
            .map_err(|e| Error::Io(format!("cannot listen on {ip}:{port}: {e}")))?;
        let addr = net.local_addr();
        let cfg = CoreConfig {
            uid,
            replication,
            listen_port: Some(addr.port()),
            static_public: net.static_public(),
            seed: seed(),
        };
        let (tx, rx) = unbounded();
        let waker = net.waker();
        let start = Instant::now();
        let core = Core::new(cfg, Box::new(MemStore::new()), 0);
        let thread = std::thread::Builder::new()
            .name(format!("peer-{}", addr.port()))
            .stack_size(256 * 1024) // W1 touches 24 KiB; 2 MiB per peer is address space wasted
            .spawn(move || run_tcp(net, core, rx, start))
            .map_err(|e| Error::Io(format!("cannot start the peer thread: {e}")))?;
        let shared = Shared {
            tx,
            waker: Some(waker),
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            outbox: None,
        };
        Ok(Node { shared: Arc::new(shared), uid, addr, replication })
    }

    /// A peer on a program-supplied transport: no sockets; envelopes go in through
    /// `ext_push_envelope` and out through `ext_pop_envelope`. `ip:port` is its address there.
    pub fn new_external(uid: Id, ip: IpAddr, port: u16, replication: u32) -> Result<Node> {
        check_replication(replication)?;
        let addr = SocketAddr::new(ip, port);
        let cfg = CoreConfig { uid, replication, listen_port: Some(port), static_public: [0; 32], seed: seed() };
        let (tx, rx) = unbounded();
        let (out_tx, out_rx) = unbounded();
        let start = Instant::now();
        let core = Core::new(cfg, Box::new(MemStore::new()), 0);
        let thread = std::thread::Builder::new()
            .name(format!("peer-ext-{port}"))
            .spawn(move || run_external(core, rx, out_tx, addr, start))
            .map_err(|e| Error::Io(format!("cannot start the peer thread: {e}")))?;
        let shared = Shared {
            tx,
            waker: None,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            outbox: Some(out_rx),
        };
        Ok(Node { shared: Arc::new(shared), uid, addr, replication })
    }

    pub fn uid(&self) -> Id {
        self.uid
    }

    /// The bound (or given, for an external peer) port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn replication(&self) -> u32 {
        self.replication
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    fn send(&self, cmd: Command) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.shared.tx.send(cmd).map_err(|_| Error::Closed)?;
        if let Some(w) = &self.shared.waker {
            w.wake().map_err(|e| Error::Io(format!("cannot wake the peer thread: {e}")))?;
        }
        Ok(())
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

    /// Fill the routing table from the peers already known.
    pub fn bootstrap(&self) -> Result<()> {
        self.call(Op::Bootstrap).map(|_| ())
    }

    /// Store `value` at the nearest peers of its SHA-256; returns that key.
    pub fn set(&self, value: &[u8]) -> Result<Id> {
        if value.len() > MAX_VALUE_SIZE {
            return Err(Error::TooLarge(value.len()));
        }
        match self.call(Op::Set { value: Arc::new(value.to_vec()) })? {
            OpResult::Key(k) => Ok(k),
            r => Err(unexpected(r)),
        }
    }

    /// The value whose SHA-256 is `key`, or None when no peer has it.
    pub fn get(&self, key: &Id) -> Result<Option<Vec<u8>>> {
        match self.call(Op::Ref { key: *key })? {
            OpResult::Value(v) => Ok(v),
            r => Err(unexpected(r)),
        }
    }

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
        let (from, msg) = decode_envelope(envelope).map_err(|e| Error::Malformed(e.to_string()))?;
        self.send(Command::Incoming(from, msg))
    }

    /// External transport: the next envelope to deliver and where, waiting at most `timeout`.
    pub fn ext_pop_envelope(&self, timeout: Duration) -> Result<Option<(SocketAddr, Vec<u8>)>> {
        let Some(out) = &self.shared.outbox else {
            return Err(Error::Invalid("not a peer on a program-supplied transport".into()));
        };
        if self.is_closed() {
            return Err(Error::Closed);
        }
        match out.recv_timeout(timeout) {
            Ok(m) => Ok(Some(m)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    pub fn stats(&self) -> Result<Stats> {
        let (tx, rx) = bounded(1);
        self.send(Command::Stats(tx))?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// Stop the background thread and join it. Later calls return `Error::Closed`. Idempotent.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.shared.tx.send(Command::Stop);
        if let Some(w) = &self.shared.waker {
            let _ = w.wake();
        }
        if let Some(t) = self.shared.thread.lock().take() {
            let _ = t.join();
        }
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

/// What both transports' loops share: callers waiting on ops, and the command handling.
struct Clients {
    waiting: HashMap<u64, Sender<OpResult>>,
    next: u64,
}

impl Clients {
    /// Apply a command; false when the loop must stop.
    fn command(
        &mut self,
        core: &mut Core,
        now: u64,
        cmd: Command,
        open: usize,
        incoming: &mut Vec<(SocketAddr, Message)>,
    ) -> bool {
        match cmd {
            Command::Op(op, reply) => {
                self.next += 1;
                self.waiting.insert(self.next, reply);
                core.start(now, self.next, *op);
            }
            Command::Stats(reply) => {
                let (values, value_bytes, bag_entries, namespace_records) = core.store().counts();
                let c = core.counters;
                let _ = reply.send(Stats {
                    contacts: core.routing().len(),
                    values,
                    value_bytes,
                    bag_entries,
                    namespace_records,
                    requests_sent: c.requests_sent,
                    requests_failed: c.requests_failed,
                    requests_received: c.requests_received,
                    open_connections: open,
                });
            }
            Command::Incoming(from, msg) => incoming.push((from, msg)),
            Command::Stop => return false,
        }
        true
    }

    fn deliver(&mut self, core: &mut Core) {
        while let Some((client, r)) = core.poll_event() {
            if let Some(tx) = self.waiting.remove(&client) {
                let _ = tx.send(r);
            }
        }
    }
}

fn run_tcp(mut net: Net, mut core: Core, rx: Receiver<Command>, start: Instant) {
    let mut clients = Clients { waiting: HashMap::new(), next: 0 };
    let mut events = Vec::new();
    let mut unused = Vec::new();
    loop {
        let now = micros(start);
        // Computed once a turn (it walks the requests in flight): anything due by the end of
        // this turn was already scheduled, since new timers start from `now`.
        let due = core.next_timeout();
        let timeout = due.map(|t| Duration::from_micros(t.saturating_sub(now)));
        if let Err(e) = net.poll(timeout, &mut events) {
            // The poller itself failed: nothing can be served any more.
            eprintln!("libpeer: event loop stopped: {e}");
            return;
        }
        let now = micros(start);
        while let Ok(cmd) = rx.try_recv() {
            if !clients.command(&mut core, now, cmd, net.open_connections(), &mut unused) {
                return;
            }
        }
        for ev in events.drain(..) {
            match ev {
                NetEvent::Reply { token, reply, remote_static } => {
                    core.handle_reply(now, token, Some((reply, remote_static)))
                }
                NetEvent::Failed { token } => core.handle_reply(now, token, None),
                NetEvent::Request { conn, from, remote_static, request } => {
                    let reply = core.handle_request(now, from, remote_static, request);
                    net.send_reply(conn, &reply);
                }
            }
        }
        if due.is_some_and(|t| t <= now) {
            core.handle_timeout(now);
        }
        while let Some(Transmit { token, to, expected_static, request }) = core.poll_transmit() {
            net.send_request(token, to, expected_static, &request);
        }
        clients.deliver(&mut core);
    }
}

fn run_external(
    mut core: Core,
    rx: Receiver<Command>,
    out: Sender<(SocketAddr, Vec<u8>)>,
    me: SocketAddr,
    start: Instant,
) {
    let mut clients = Clients { waiting: HashMap::new(), next: 0 };
    // Replies carry no request id: they come back in request order per address (SPEC 3),
    // so each address keeps the tokens of its outstanding requests in order.
    let mut outstanding: HashMap<SocketAddr, VecDeque<u64>> = HashMap::new();
    let mut incoming = Vec::new();
    let mut buf = Vec::new();
    let envelope = |msg: &[u8]| {
        let mut e = Vec::with_capacity(msg.len() + 40);
        encode_envelope(me, msg, &mut e);
        e
    };
    loop {
        let now = micros(start);
        let due = core.next_timeout();
        let timeout = due.map_or(Duration::from_secs(1), |t| Duration::from_micros(t.saturating_sub(now)));
        let first = match rx.recv_timeout(timeout) {
            Ok(cmd) => Some(cmd),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now = micros(start);
        for cmd in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            if !clients.command(&mut core, now, cmd, 0, &mut incoming) {
                return;
            }
        }
        for (from, msg) in incoming.drain(..) {
            match msg {
                Message::Request(req) => {
                    let reply = core.handle_request(now, from, [0; 32], req);
                    buf.clear();
                    encode_reply(&reply, &mut buf);
                    let _ = out.send((from, envelope(&buf)));
                }
                Message::Reply(reply) => {
                    if let Some(q) = outstanding.get_mut(&from) {
                        if let Some(token) = q.pop_front() {
                            core.handle_reply(now, token, Some((reply, [0; 32])));
                        }
                        if q.is_empty() {
                            outstanding.remove(&from);
                        }
                    }
                }
            }
        }
        if due.is_some_and(|t| t <= now) {
            core.handle_timeout(now);
        }
        while let Some(t) = core.poll_transmit() {
            buf.clear();
            encode_request(&t.request, &mut buf);
            let q = outstanding.entry(t.to).or_default();
            // A destination that never answers must not grow this without bound: tokens
            // this old were failed by the core's request timeout long ago.
            if q.len() >= MAX_EXT_OUTSTANDING {
                q.pop_front();
            }
            q.push_back(t.token);
            let _ = out.send((t.to, envelope(&buf)));
        }
        clients.deliver(&mut core);
    }
}
