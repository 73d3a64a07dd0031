//! The built-in transport (PROTOCOL.md §3): encrypted, authenticated TCP on one mio event loop.
//!
//! # Connection layout
//! Both directions of a connection are a sequence of *records*: a u16 big-endian length
//! `L` (at most 16,512), then `L` bytes. A longer record closes the connection before its
//! body is read.
//!
//! - The dialer's first record is one pattern byte, `1` for
//!   `Noise_XX_25519_ChaChaPoly_SHA256` or `2` for `Noise_IK_25519_ChaChaPoly_SHA256`,
//!   followed by Noise handshake message 1. Every other record holds exactly one Noise
//!   message: the rest of the handshake, then transport messages.
//! - Prologue of both patterns: the 16 bytes `libpeer noise v1` then the pattern byte, so an
//!   altered pattern byte fails the handshake.
//! - XX: `-> e` / `<- e, ee, s, es` / `-> s, se` + payload. IK (the dialer already knows the
//!   responder's static key, from a `peer` reply): `-> e, es, s, ss` + payload /
//!   `<- e, ee, se`. Message 2 payloads are empty; the responder never sends first.
//! - The plaintext is one byte stream per direction: frames (PROTOCOL.md §2: u32 big-endian
//!   length at most 1 MiB, then datum text) back to back, cut anywhere into pieces of at
//!   most 16 KiB, each carried as one transport message (Noise allows 64 KiB; 16 KiB
//!   records, as in TLS, keep the scratch buffers and a connection's partial input small).
//!   The dialer's first requests ride in the payload of XX message 3 or IK message 1 (as
//!   much as fits), so a request to a known key costs one round trip. Like all 0-RTT data,
//!   an IK message 1 recorded by an eavesdropper can be replayed to the responder (it
//!   cannot be read or altered); the requests are idempotent reads and stores, so a replay
//!   changes nothing.
//!
//! # Rules
//! Requests flow dialer -> acceptor only; the acceptor answers in arrival order and replies
//! are matched FIFO, several in flight at once (at most `MAX_IN_FLIGHT_PER_CONNECTION`). A
//! request unanswered after 5 s fails and closes its connection. Anything malformed
//! (record, ciphertext, handshake, frame longer than 1 MiB, datum) closes that one
//! connection and fails its requests. Idle connections close after `IDLE_TIMEOUT_US` on the
//! dialing side; the accepting side waits one request timeout longer, so the dialer, which
//! knows whether it is about to reuse the connection, is normally the one that closes.
//! Open connections are bounded per direction; the least recently used idle one makes room.
//!
//! # Memory
//! Hundreds of peers may share a process, each with dozens of connections, mostly idle, so
//! what an idle `Net` and an idle connection hold is kept small:
//! - Scratch buffers (socket reads, encryption, encoding) belong to the process, not to a
//!   `Net` or a connection: a `Net` checks a set out of a pool (`scratch`) when one of its
//!   calls first needs one and hands it back when the call returns.
//! - A connection keeps output only for what its socket refused, input only for an
//!   incomplete record or frame (all three in one box, absent when idle; a partial frame's
//!   buffer grows with the bytes received, not with the length announced), its request
//!   queue only while requests are in flight, and frees each once emptied. Its handshake
//!   state is dropped when the handshake completes, and the box that held it goes to a
//!   process-wide spare list for the next connection.
//! - Connections are boxed in the map (a table of pointers, not of connections), and the
//!   maps shrink when connections close; a caller's event vector grown by a burst is freed
//!   when the loop goes to sleep.
//!
//! # Code
//! This file runs the loop (listener, dials, the connection table and its bounds, timers).
//! `conn` is one connection: socket, records, the handshake's actions applied, frames (with
//! `wire::frame`), replies matched to requests. `noise` is the handshake, a state machine
//! that returns actions. `budget` (the process's connection count), `scratch` (shared
//! buffers), `record` (record limits) and `event` (events, `ConnId`, `ConnError`) are
//! leaves. Imports run one way, in that order.

mod budget;
mod conn;
mod event;
mod noise;
mod record;
mod scratch;

pub mod fuzzing;

use crate::consts::{MAX_INBOUND_CONNECTIONS, MAX_OUTBOUND_CONNECTIONS, MIN_CONNECTIONS_PER_PEER};
use crate::wire::frame::write_frame;
use crate::wire::{encode_reply, encode_request, Reply, Request};
use conn::{Conn, Pending};
use event::ConnError;
pub use event::{ConnId, NetEvent};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use noise::Handshake;
use scratch::Lease;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Drop for Net {
    fn drop(&mut self) {
        budget::closed(self.conns.len());
    }
}

pub struct NetConfig {
    pub bind: SocketAddr,
    /// X25519 static secret of this peer's Noise identity.
    pub static_secret: [u8; 32],
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Without any deadline the loop still looks at its connections this often.
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(3600);
/// Readiness events taken per wait. mio is edge-triggered: events past this stay queued in
/// the kernel and the next wait returns them at once, so a small buffer costs only an extra
/// wait under heavy load.
const EVENTS_PER_WAIT: usize = 64;
/// The caller's event vector keeps this many slots across sleeps (one batch usually has a
/// few events; a burst's larger vector is freed).
const KEEP_EVENTS: usize = 4;

pub struct Net {
    poll: Poll,
    mio_events: Events,
    listener: TcpListener,
    local: SocketAddr,
    public: [u8; 32],
    waker: Arc<Waker>,
    /// Boxed: the table's empty slots then cost a pointer, not a connection.
    conns: HashMap<ConnId, Box<Conn>>,
    /// Outbound connection to each address (reused by later requests).
    by_addr: HashMap<SocketAddr, ConnId>,
    outbound: usize,
    inbound: usize,
    next_id: ConnId,
    /// X25519 static secret of this peer's Noise identity.
    secret: [u8; 32],
    /// This loop's scratch buffers, held only while one of its calls runs.
    scratch: Lease,
    request_timeout: Duration,
    idle_timeout: Duration,
    /// Events produced outside `poll` (a request that failed at once), delivered by the next poll.
    deferred: Vec<NetEvent>,
    /// No connection deadline falls before this.
    next_check: Instant,
    /// Connections closed because something went wrong, and the latest reason.
    failures: u64,
    last_failure: Option<String>,
    /// TCP bytes (out, in) of the connections closed so far.
    closed_bytes: (u64, u64),
}

impl Net {
    /// Binds the listener, creates the mio Poll and a Waker.
    pub fn new(cfg: NetConfig) -> io::Result<Net> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(cfg.bind)?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local = listener.local_addr()?;
        let secret = x25519_dalek::StaticSecret::from(cfg.static_secret);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Ok(Net {
            poll,
            mio_events: Events::with_capacity(EVENTS_PER_WAIT),
            listener,
            local,
            public,
            waker,
            conns: HashMap::new(),
            by_addr: HashMap::new(),
            outbound: 0,
            inbound: 0,
            next_id: 2,
            secret: cfg.static_secret,
            scratch: Lease::default(),
            request_timeout: Duration::from_micros(crate::consts::REQUEST_TIMEOUT_US),
            idle_timeout: Duration::from_micros(crate::consts::IDLE_TIMEOUT_US),
            deferred: Vec::new(),
            next_check: Instant::now() + MAX_TIMER_SLEEP,
            failures: 0,
            closed_bytes: (0, 0),
            last_failure: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// This peer's Noise static public key.
    pub fn static_public(&self) -> [u8; 32] {
        self.public
    }

    /// Other threads call `.wake()` on it after queueing a command for the loop.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// How long a request may wait for its reply (default `REQUEST_TIMEOUT_US`).
    pub fn set_request_timeout(&mut self, d: Duration) {
        self.request_timeout = d;
        self.next_check = Instant::now();
    }

    /// How long an unused outbound connection stays open (default `IDLE_TIMEOUT_US`;
    /// inbound ones stay one request timeout longer).
    pub fn set_idle_timeout(&mut self, d: Duration) {
        self.idle_timeout = d;
        self.next_check = Instant::now();
    }

    /// Connections closed so far because of an error (I/O, handshake, malformed input,
    /// timeout), and why the latest one was (diagnostics).
    pub fn failures(&self) -> (u64, Option<&str>) {
        (self.failures, self.last_failure.as_deref())
    }

    /// TCP bytes (sent, received) over all connections so far, Noise framing included.
    pub fn bytes(&self) -> (u64, u64) {
        self.conns.values().fold(self.closed_bytes, |(o, i), c| (o + c.bytes_out, i + c.bytes_in))
    }

    /// Heap bytes held by connection buffers right now (diagnostics).
    pub fn buffered_bytes(&self) -> usize {
        self.conns.values().map(|c| c.buffered()).sum()
    }

    /// Queue `request` to `to`, reusing an open connection to that address or dialing one.
    /// With `expected_static` = Some(k) the handshake must authenticate exactly k (else Failed)
    /// and uses Noise IK carrying the first request; with None it uses XX.
    pub fn send_request(&mut self, token: u64, to: SocketAddr, expected_static: Option<[u8; 32]>, request: &Request) {
        self.queue_request(token, to, expected_static, request);
        self.scratch.release();
    }

    fn queue_request(&mut self, token: u64, to: SocketAddr, expected_static: Option<[u8; 32]>, request: &Request) {
        let now = Instant::now();
        let deadline = now + self.request_timeout;
        let enc = &mut self.scratch.get().enc;
        enc.clear();
        if write_frame(enc, |body| encode_request(request, body)).is_err() {
            self.deferred.push(NetEvent::Failed { token });
            return;
        }
        let id = match self.by_addr.get(&to) {
            Some(&id) => id,
            None => {
                self.dial(token, to, expected_static, deadline, now);
                return;
            }
        };
        let Some(c) = self.conns.get_mut(&id) else {
            // Unreachable: by_addr only names live connections.
            self.by_addr.remove(&to);
            self.deferred.push(NetEvent::Failed { token });
            return;
        };
        if !c.takes(expected_static) {
            self.deferred.push(NetEvent::Failed { token });
            return;
        }
        let bufs = self.scratch.get();
        let result = c.request(Pending { token, deadline }, expected_static, &bufs.enc, &mut bufs.crypt, now);
        self.arm(deadline);
        if let Err(e) = result {
            self.close_later(id, &e);
        }
    }

    /// Answer the oldest unanswered request of inbound connection `conn`. A connection closed
    /// meanwhile is ignored (its dialer sees the request fail).
    pub fn send_reply(&mut self, conn: ConnId, reply: &Reply) {
        self.queue_reply(conn, reply);
        self.scratch.release();
    }

    fn queue_reply(&mut self, conn: ConnId, reply: &Reply) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.awaits_reply() {
            return;
        }
        let bufs = self.scratch.get();
        bufs.enc.clear();
        let result = match write_frame(&mut bufs.enc, |body| encode_reply(reply, body)) {
            // Cannot be sent; closing beats leaving the dialer's FIFO out of step.
            Err(_) => Err(ConnError::Protocol("reply longer than 1 MiB")),
            Ok(()) => c.reply(&bufs.enc, &mut bufs.crypt, Instant::now()),
        };
        if let Err(e) = result {
            self.close_later(conn, &e);
        }
    }

    /// Close a connection that failed outside `poll`; the next poll delivers its failures.
    fn close_later(&mut self, id: ConnId, e: &ConnError) {
        self.note(e);
        let mut ev = std::mem::take(&mut self.deferred);
        self.close(id, &mut ev);
        self.deferred = ev;
    }

    /// Wait at most `timeout` for I/O or a wake; process everything ready; append events.
    /// Also runs the transport's own timers (request timeout, handshake timeout, idle close).
    /// Before sleeping, an empty `events` with more than a few slots is freed.
    pub fn poll(&mut self, timeout: Option<Duration>, events: &mut Vec<NetEvent>) -> io::Result<()> {
        let r = self.poll_batch(timeout, events);
        self.scratch.release();
        r
    }

    fn poll_batch(&mut self, timeout: Option<Duration>, events: &mut Vec<NetEvent>) -> io::Result<()> {
        let now = Instant::now();
        let until_timer = self.next_check.saturating_duration_since(now);
        let mut wait = timeout.map_or(until_timer, |t| t.min(until_timer));
        if !self.deferred.is_empty() {
            wait = Duration::ZERO;
        }
        if !wait.is_zero() && events.is_empty() && events.capacity() > KEEP_EVENTS {
            // About to sleep: an idle peer keeps no event buffer grown by a burst.
            *events = Vec::new();
        }
        match self.poll.poll(&mut self.mio_events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if !self.deferred.is_empty() {
            events.append(&mut std::mem::take(&mut self.deferred));
        }
        let now = Instant::now();
        // Taken out so the connections can be worked on while it is read; an empty
        // `Events` allocates nothing.
        let ready = std::mem::replace(&mut self.mio_events, Events::with_capacity(0));
        for ev in ready.iter() {
            let r = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let w = ev.is_writable() || ev.is_write_closed() || ev.is_error();
            match ev.token() {
                LISTENER => self.accept(now),
                WAKER => {}
                Token(t) => self.conn_ready(t as ConnId, r, w, now, events),
            }
        }
        self.mio_events = ready;
        self.run_timers(now, events);
        Ok(())
    }

    fn arm(&mut self, at: Instant) {
        if at < self.next_check {
            self.next_check = at;
        }
    }

    fn conn_ready(&mut self, id: ConnId, readable: bool, writable: bool, now: Instant, events: &mut Vec<NetEvent>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let result = (|| {
            if !c.connected {
                if !c.check_connected()? {
                    return Ok(());
                }
                c.flush()?;
            } else if writable {
                c.flush()?;
            }
            if readable {
                c.last_active = now;
                c.read_all(&self.secret, self.scratch.get(), events)?;
            }
            Ok::<(), ConnError>(())
        })();
        if let Err(e) = result {
            // A peer closing a connection nothing waits on is routine, not a failure.
            if !(matches!(e, ConnError::Closed) && self.conns.get(&id).is_some_and(|c| c.is_idle())) {
                self.note(&e);
            }
            self.close(id, events);
        }
    }

    fn note(&mut self, e: &ConnError) {
        log::debug!("connection closed: {e}");
        self.failures += 1;
        self.last_failure = Some(e.to_string());
    }

    /// Whether a new connection in one direction may open, after closing one of our own idle
    /// ones if the per-peer bound or the process-wide descriptor budget asks for it.
    fn make_room(&mut self, outbound: bool) -> bool {
        let (mine, max) =
            if outbound { (self.outbound, MAX_OUTBOUND_CONNECTIONS) } else { (self.inbound, MAX_INBOUND_CONNECTIONS) };
        if mine >= max {
            return self.evict(outbound);
        }
        if budget::exhausted() {
            return self.evict(outbound) || mine < MIN_CONNECTIONS_PER_PEER;
        }
        true
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut sock, peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A connection that died in the backlog: take the next. Out of fds: stop
                // for now rather than spin (the next connection wakes the listener again).
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => continue,
                Err(_) => return,
            };
            if !self.make_room(false) {
                continue; // dropped: every inbound connection is busy
            }
            if sock.set_nodelay(true).is_err() {
                continue;
            }
            let id = self.next_id;
            if self
                .poll
                .registry()
                .register(&mut sock, Token(id as usize), Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            self.next_id += 1;
            let deadline = now + self.request_timeout;
            self.conns.insert(id, Box::new(Conn::accepted(id, sock, peer, deadline, now)));
            self.inbound += 1;
            budget::opened();
            self.arm(deadline);
        }
    }

    /// Open a connection to `to` carrying the request framed in the scratch set's `enc`.
    fn dial(&mut self, token: u64, to: SocketAddr, expected: Option<[u8; 32]>, deadline: Instant, now: Instant) {
        if !self.make_room(true) {
            self.deferred.push(NetEvent::Failed { token });
            return;
        }
        let id = self.next_id;
        let setup = (|| {
            let mut sock = TcpStream::connect(to)?;
            sock.set_nodelay(true)?;
            self.poll.registry().register(&mut sock, Token(id as usize), Interest::READABLE | Interest::WRITABLE)?;
            Ok::<_, io::Error>(sock)
        })();
        let sock = match setup {
            Ok(s) => s,
            Err(_) => {
                self.deferred.push(NetEvent::Failed { token });
                return;
            }
        };
        // The handshake's first message (an X25519 key pair, and in IK two DH) only once the
        // connect is under way: a refused address costs no cryptography, and starting the
        // TCP connect first keeps the budget's eviction pattern as it was (measured: with
        // the handshake first, W1 at N = 300 made 3.7% more handshakes).
        let dial = match Handshake::dial(&self.secret, expected, &self.scratch.get().enc) {
            Ok(d) => d,
            Err(e) => {
                self.note(&e);
                let mut sock = sock;
                let _ = self.poll.registry().deregister(&mut sock);
                self.deferred.push(NetEvent::Failed { token });
                return;
            }
        };
        self.next_id += 1;
        let first = Pending { token, deadline };
        let c = Conn::dialed(id, sock, to, dial, &self.scratch.get().enc, first, now);
        self.conns.insert(id, Box::new(c));
        self.by_addr.insert(to, id);
        self.outbound += 1;
        budget::opened();
        self.arm(deadline);
    }

    /// Close the least recently used idle connection of one direction; false if none is idle.
    fn evict(&mut self, outbound: bool) -> bool {
        let victim = self
            .conns
            .values()
            .filter(|c| c.outbound == outbound && c.is_idle())
            .min_by_key(|c| c.last_active)
            .map(|c| c.id);
        match victim {
            Some(id) => {
                // Idle: no request to fail.
                let mut none = Vec::new();
                self.close(id, &mut none);
                true
            }
            None => false,
        }
    }

    /// Drop a connection, failing every request still waiting on it.
    fn close(&mut self, id: ConnId, events: &mut Vec<NetEvent>) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.sock);
        budget::closed(1);
        self.closed_bytes.0 += c.bytes_out;
        self.closed_bytes.1 += c.bytes_in;
        if c.outbound {
            self.outbound -= 1;
            if self.by_addr.get(&c.peer) == Some(&id) {
                self.by_addr.remove(&c.peer);
            }
        } else {
            self.inbound -= 1;
        }
        c.fail_all(events);
        shrink(&mut self.conns);
        shrink(&mut self.by_addr);
    }

    /// Close connections past a deadline and compute when to look again.
    fn run_timers(&mut self, now: Instant, events: &mut Vec<NetEvent>) {
        if now < self.next_check {
            return;
        }
        let idle = self.idle_timeout;
        let inbound_idle = idle + self.request_timeout;
        let mut next = now + MAX_TIMER_SLEEP;
        let mut expired = Vec::new();
        for c in self.conns.values() {
            match c.deadline(idle, inbound_idle) {
                Some(d) if d <= now => expired.push(c.id),
                Some(d) => next = next.min(d),
                // Waiting on the loop's reply: look again once it could have gone idle.
                None => next = next.min(now + inbound_idle),
            }
        }
        for id in expired {
            if self.conns.get(&id).is_some_and(|c| !c.is_idle()) {
                self.note(&ConnError::Protocol("timed out"));
            }
            self.close(id, events);
        }
        self.next_check = next;
    }
}

/// Give back most of a map's table once connections have closed (hysteresis: a map that
/// shrinks is still half empty, so it does not regrow at the next insert).
fn shrink<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 4 * m.len() + 16 {
        m.shrink_to(2 * m.len());
    }
}

#[cfg(test)]
mod tests;
