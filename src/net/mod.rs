//! The built-in transport (PROTOCOL.md §3): encrypted, authenticated TCP on one mio event loop.
//!
//! # Layout and rules
//! PROTOCOL.md §3 is the contract this module implements, and the one place it is written
//! down: records, the two Noise patterns and their prologue, requests riding in the
//! handshake, who speaks, timeouts, bounds. What the code adds to it:
//! - Records are at most 16 KiB of plaintext (Noise allows 64 KiB): as in TLS, that keeps the
//!   scratch buffers and a connection's partial input small.
//! - IK message 1 is written when the TCP connect completes (`Conn::hello`), so every request
//!   queued by then rides in it (the core's `iam` and the request behind it); later ones wait
//!   for message 2.
//! - Which connections go to routing contacts the core says (`send_request_marked`,
//!   `mark_contact`); `policy` holds the idle limits and the eviction order.
//! - A request sent on a reused idle connection that then closes before any byte of its reply
//!   arrived (the acceptor closed it meanwhile) is sent once more on a new connection.
//!
//! # Admission (issue 13)
//! Connections are bounded per direction, by the process's descriptors, and inbound ones per
//! remote address; `table` says how, and who makes room (`policy`: connections to routing
//! contacts last; the process's budget, shared by all its peers, never refuses a newcomer).
//! Outgoing connections are bound to the listening address when it is a specific IP (`dial`).
//! Handshakes dialed, accepted and completed are counted (`handshakes`).
//!
//! # Memory
//! What a hostile peer can make a `Net` hold is bounded (issue 13), and each bound says what
//! happens when it is reached:
//! - Unsent replies, per connection: each request read reserves what its reply may add (a
//!   whole 1 MiB message for a `ref`, 8 KiB for any other), and once unsent output plus
//!   reservations reach `OUTPUT_PAUSE_BYTES` (2 MiB) the connection reads no more requests
//!   (replies to those already read are still queued) until its dialer has read enough; the
//!   rest of the read that paused it waits undecoded (at most one read, 16 KiB), and
//!   reading resumes when the output drains. So a connection holds at most about 3 MiB of
//!   replies. Past `OUTPUT_CLOSE_BYTES` (8 MiB, a safety net) it is closed, and so is one
//!   whose unsent output has not moved for one request timeout (its dialer has given up).
//! - Unsent replies, per `Net`: past `OUTPUT_BUDGET_BYTES` (32 MiB) over all connections,
//!   the connection holding the most is closed.
//! - Input: a partial frame's buffer grows with the bytes that arrived, a record is at most
//!   16 KiB, and past `PARTIAL_INPUT_BUDGET_BYTES` (32 MiB) of incomplete records and frames
//!   over all connections, the connection holding the largest incomplete frame is closed.
//! - A dialer's own output is its requests: at most `MAX_IN_FLIGHT_PER_CONNECTION` per
//!   connection, failed (and the connection closed) after the request timeout.
//! - Events: a poll returns what its ready connections produced; a connection hands over at
//!   most `MAX_IN_FLIGHT_PER_CONNECTION` unanswered requests.
//!
//! Hundreds of peers may share a process, each with dozens of connections, mostly idle, so
//! what an idle `Net` and an idle connection hold is kept small:
//! - Scratch buffers (socket reads, encryption, encoding) belong to the process, not to a
//!   `Net` or a connection: a `Net` checks a set out of a pool (`scratch`) when one of its
//!   calls first needs one and hands it back when the call returns.
//! - A connection keeps output only for what its socket refused, input only for an
//!   incomplete record or frame or while paused (all in one box, absent when idle; a partial frame's
//!   buffer grows with the bytes received, not with the length announced), its request
//!   queue only while requests are in flight, and frees each once emptied. Its handshake
//!   state is dropped when the handshake completes, and the box that held it goes to a
//!   process-wide spare list for the next connection.
//! - Connections are boxed in the map (a table of pointers, not of connections), and the
//!   maps shrink when connections close; a caller's event vector grown by a burst is freed
//!   when the loop goes to sleep.
//!
//! # Driving
//! A `Net` made by `new` owns a mio `Poll` and its caller drives it with `poll` (the tests
//! do). One made by `shared` registers its sockets with an event loop that many peers of the
//! process share (`node::pool`): the loop hands it the readiness of its sockets (`process`,
//! what `poll` does after its wait) and runs it again by its `deadline`. `reactor` says how
//! tokens name a `Net`'s sockets within a shared poll.
//!
//! # Code
//! This file handles readiness (listener, dials, requests and replies, closes, timers).
//! `table` is the connection table and the counts its bounds are checked against, choosing
//! whom to close with `policy` (caps, eviction and idle time, shared with the simulator) and
//! `memory` (the budgets above). `input` reads a connection and `conn` is the rest of one:
//! socket, records, the handshake's actions applied, frames (with `wire::frame`), replies
//! matched to requests, output. `noise` is the handshake, a state machine that returns
//! actions. `budget` (the process's connection count), `limits` (configuration, per-address
//! caps), `dial` (outgoing sockets), `scratch` (shared buffers), `record` (record limits),
//! `reactor` (its own poll or a shared loop's registry, tokens) and `event` (events,
//! `ConnId`, `ConnError`) are leaves. Imports run one way, in that order.

mod budget;
mod conn;
mod dial;
mod event;
mod input;
mod limits;
mod memory;
mod noise;
// Shared with the simulator's WAN mode, which models connections by the same rules.
pub(crate) mod policy;
mod reactor;
mod record;
mod scratch;
mod table;

pub mod fuzzing;

use crate::consts::OUTPUT_CLOSE_BYTES;
use crate::wire::frame::write_frame;
use crate::wire::{encode_reply, encode_request, Reply, Request};
use conn::{Conn, Pending, Retry};
use event::ConnError;
pub use event::{ConnId, Defences, NetEvent};
pub use limits::{NetConfig, NetLimits};
pub use table::Handshakes;
#[cfg(feature = "sim")]
pub use noise::in_memory as handshake_in_memory;
// What rides in IK message 1 at most: the simulator holds back what does not fit.
#[cfg(feature = "sim")]
pub(crate) use noise::IK1_PAYLOAD;
use memory::Over;
use mio::net::TcpListener;
use mio::{Events, Interest, Registry, Waker};
use reactor::{Poller, LISTENER, WAKER};
pub use reactor::{Ready, TOKEN_BITS};
use scratch::Lease;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use policy::Room;
use table::Table;

/// Without any deadline the loop still looks at its connections this often.
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(3600);
/// The caller's event vector keeps this many slots across sleeps (one batch usually has a
/// few events; a burst's larger vector is freed).
const KEEP_EVENTS: usize = 4;
/// TCP keepalive on dialed connections (a routing contact's stays open up to 30 min idle):
/// the first probe after this much silence, which keeps NAT and load-balancer mappings
/// (dropped after 4-6 min idle) and, unanswered, closes the connection to a vanished peer
/// after the system's count of probes (Linux: 9) at `KEEPALIVE_INTERVAL`. Idle connections
/// to others close at 60 s, before the first probe.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(90);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

pub struct Net {
    /// Its own poll, or a shared loop's registry (`reactor`).
    poller: Poller,
    listener: TcpListener,
    local: SocketAddr,
    public: [u8; 32],
    conns: Table,
    /// Paused connections whose output drained during a `send_reply`: read by the next poll.
    resumable: Vec<ConnId>,
    defences: Defences,
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
    /// Binds the listener, creates the mio Poll and a Waker: a `Net` driven by `poll`.
    pub fn new(cfg: NetConfig) -> io::Result<Net> {
        let mut net = Net::with_poller(cfg, Poller::own()?)?;
        net.register(0)?;
        Ok(net)
    }

    /// Binds the listener, to be driven by a loop shared with other peers: its sockets go to
    /// `registry` (once `register` gave it its token bits), `waker` wakes that loop, and the
    /// loop calls `process` with their readiness and again by `deadline`.
    pub fn shared(cfg: NetConfig, registry: Arc<Registry>, waker: Arc<Waker>) -> io::Result<Net> {
        Net::with_poller(cfg, Poller::Shared { registry, waker, base: 0 })
    }

    /// Start listening for readiness: every token of this `Net` is `base` | its own (below
    /// `TOKEN_BITS`). A shared loop calls it once, from its thread, before `process`: a
    /// connection that arrived since the bind is reported at once.
    pub fn register(&mut self, base: usize) -> io::Result<()> {
        if let Poller::Shared { base: b, .. } = &mut self.poller {
            *b = base;
        }
        let token = self.poller.token(LISTENER);
        self.poller.registry().register(&mut self.listener, token, Interest::READABLE)
    }

    fn with_poller(cfg: NetConfig, poller: Poller) -> io::Result<Net> {
        let listener = TcpListener::bind(cfg.bind)?;
        let local = listener.local_addr()?;
        let secret = x25519_dalek::StaticSecret::from(cfg.static_secret);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Ok(Net {
            poller,
            listener,
            local,
            public,
            conns: Table::new(cfg.limits),
            resumable: Vec::new(),
            defences: Defences::default(),
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

    /// Other threads call `.wake()` on it after queueing a command for the loop (a shared
    /// `Net`'s is its loop's).
    pub fn waker(&self) -> Arc<Waker> {
        self.poller.waker()
    }

    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// How long a request may wait for its reply (default `REQUEST_TIMEOUT_US`).
    pub fn set_request_timeout(&mut self, d: Duration) {
        self.request_timeout = d;
        self.next_check = Instant::now();
    }

    /// How long an unused outbound connection stays open (default `IDLE_TIMEOUT_US`; one to
    /// a routing contact `CONTACT_IDLE_FACTOR` times as long; inbound ones one request
    /// timeout longer than their dialer may: `policy::idle_limit`).
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

    /// Heap bytes held right now in unsent replies and in partial input (incomplete records
    /// and frames), over all connections: what `OUTPUT_BUDGET_BYTES` and
    /// `PARTIAL_INPUT_BUDGET_BYTES` bound.
    pub fn held_bytes(&self) -> (usize, usize) {
        self.conns.held()
    }

    /// How often each defence acted so far.
    pub fn defences(&self) -> Defences {
        self.defences
    }

    /// Handshakes dialed, accepted and completed so far.
    pub fn handshakes(&self) -> Handshakes {
        self.conns.handshakes()
    }

    /// Queue `request` to `to`, reusing an open connection to that address or dialing one.
    /// With `expected_static` = Some(k) the handshake must authenticate exactly k (else Failed)
    /// and uses Noise IK carrying the first request; with None it uses XX.
    pub fn send_request(&mut self, token: u64, to: SocketAddr, expected_static: Option<[u8; 32]>, request: &Request) {
        self.send_request_marked(token, to, expected_static, request, false);
    }

    /// `send_request`, saying whether `to` is one of the core's routing contacts: its
    /// connection is then marked so, kept longer and closed last to make room (`policy`),
    /// until a request to it says otherwise.
    pub fn send_request_marked(
        &mut self,
        token: u64,
        to: SocketAddr,
        expected_static: Option<[u8; 32]>,
        request: &Request,
        contact: bool,
    ) {
        let deadline = Instant::now() + self.request_timeout;
        self.queue_request(token, to, expected_static, request, deadline, true, contact);
        self.scratch.release();
    }

    /// `to` joined (`contact`) or left the core's routing table: an outbound connection to it
    /// is marked accordingly (as by `send_request_marked`).
    pub fn mark_contact(&mut self, to: SocketAddr, contact: bool) {
        if let Some(id) = self.conns.to(to) {
            self.conns.mark_contact(id, contact);
        }
    }

    /// `may_retry`: false for a request being sent again (`Retry`), which is not retried twice.
    /// `contact`: whether `to` is a routing contact.
    #[allow(clippy::too_many_arguments)]
    fn queue_request(
        &mut self,
        token: u64,
        to: SocketAddr,
        expected_static: Option<[u8; 32]>,
        request: &Request,
        deadline: Instant,
        may_retry: bool,
        contact: bool,
    ) {
        let now = Instant::now();
        let enc = &mut self.scratch.get().enc;
        enc.clear();
        if write_frame(enc, |body| encode_request(request, body)).is_err() {
            self.deferred.push(NetEvent::Failed { token });
            return;
        }
        let Some(id) = self.conns.to(to) else {
            if let Some(id) = self.dial(token, to, expected_static, deadline, now) {
                self.conns.mark_contact(id, contact);
            }
            return;
        };
        self.conns.mark_contact(id, contact);
        let bufs = self.scratch.get();
        let result = self.conns.work(id, |c| {
            if !c.takes(expected_static) {
                return Ok(false);
            }
            let retry = (may_retry && c.quiet())
                .then(|| Box::new(Retry { request: request.clone(), expected: expected_static }));
            let p = Pending { token, deadline, retry };
            c.request(p, expected_static, &bufs.enc, &mut bufs.crypt, now).map(|()| true)
        });
        match result {
            Some(Ok(true)) => self.arm(deadline),
            Some(Err(e)) => {
                self.arm(deadline);
                self.close_later(id, &e);
            }
            // Another key or the in-flight bound (`by_addr` only names live connections).
            Some(Ok(false)) | None => self.deferred.push(NetEvent::Failed { token }),
        }
    }

    /// Answer the oldest unanswered request of inbound connection `conn`. A connection closed
    /// meanwhile is ignored (its dialer sees the request fail).
    pub fn send_reply(&mut self, conn: ConnId, reply: &Reply) {
        self.queue_reply(conn, reply);
        self.scratch.release();
    }

    fn queue_reply(&mut self, conn: ConnId, reply: &Reply) {
        if !self.conns.get(conn).is_some_and(|c| c.awaits_reply()) {
            return;
        }
        let bufs = self.scratch.get();
        bufs.enc.clear();
        let framed = write_frame(&mut bufs.enc, |body| encode_reply(reply, body));
        let stall = self.request_timeout;
        let Some((result, resume, stall, unsent)) = self.conns.work(conn, |c| {
            let result = match framed {
                // Cannot be sent; closing beats leaving the dialer's FIFO out of step.
                Err(_) => Err(ConnError::Protocol("reply longer than 1 MiB")),
                Ok(()) => c.reply(&bufs.enc, &mut bufs.crypt, Instant::now()),
            };
            (result, c.may_resume(), c.stall_deadline(stall), c.unsent())
        }) else {
            return;
        };
        if resume && !self.resumable.contains(&conn) {
            self.resumable.push(conn);
        }
        if let Some(at) = stall {
            self.arm(at);
        }
        let mut ev = Vec::new();
        self.settle(conn, result, unsent, &mut ev);
        self.deferred.append(&mut ev);
    }

    /// After working on a connection: close it on an error or past the output limit, and
    /// close others while a memory budget is exceeded.
    fn settle(&mut self, id: ConnId, result: Result<(), ConnError>, unsent: usize, events: &mut Vec<NetEvent>) {
        match result {
            Err(e) => self.close_on(id, &e, events),
            Ok(()) if unsent > OUTPUT_CLOSE_BYTES => {
                self.defences.closed_output += 1;
                self.close_on(id, &ConnError::Protocol("replies not read"), events);
            }
            Ok(()) => {}
        }
        while let Some((id, over)) = self.conns.over_budget() {
            let why = match over {
                Over::Replies => {
                    self.defences.closed_output_budget += 1;
                    "over the budget of unsent replies"
                }
                Over::Input => {
                    self.defences.closed_input_budget += 1;
                    "over the budget of partial input"
                }
            };
            self.note(&ConnError::Protocol(why));
            self.close(id, events);
        }
    }

    /// Close a connection that failed outside `poll`; the next poll delivers its failures.
    fn close_later(&mut self, id: ConnId, e: &ConnError) {
        let mut ev = Vec::new();
        self.close_on(id, e, &mut ev);
        self.deferred.append(&mut ev);
    }

    /// Close a connection because of `e`. If its peer closed it, the requests it may send
    /// again (`Retry`) go on a new connection instead of failing.
    fn close_on(&mut self, id: ConnId, e: &ConnError, events: &mut Vec<NetEvent>) {
        let peer_closed = e.peer_closed();
        let contact = self.conns.is_contact(id);
        let Some((retries, to, idle)) = self.conns.work(id, |c| {
            let retries = if peer_closed { c.take_retries() } else { Vec::new() };
            (retries, c.peer, c.is_idle())
        }) else {
            return;
        };
        let now = Instant::now();
        // A peer closing a connection nothing waits on is routine, not a failure.
        if !(e.peer_closed() && idle) {
            self.note(e);
        }
        self.close(id, events);
        for (token, deadline, r) in retries {
            if deadline <= now {
                events.push(NetEvent::Failed { token });
            } else {
                self.defences.retried += 1;
                self.queue_request(token, to, r.expected, &r.request, deadline, false, contact);
            }
        }
    }

    /// Wait at most `timeout` for I/O or a wake; process everything ready; append events.
    /// Also runs the transport's own timers (request timeout, handshake timeout, idle close).
    /// Before sleeping, an empty `events` with more than a few slots is freed. Only for a
    /// `Net` made by `new` (a shared one is an error: its loop waits for it).
    pub fn poll(&mut self, timeout: Option<Duration>, events: &mut Vec<NetEvent>) -> io::Result<()> {
        let now = Instant::now();
        let until = self.deadline().saturating_duration_since(now);
        let wait = timeout.map_or(until, |t| t.min(until));
        if !wait.is_zero() && events.is_empty() && events.capacity() > KEEP_EVENTS {
            // About to sleep: an idle peer keeps no event buffer grown by a burst.
            *events = Vec::new();
        }
        let Poller::Own { poll, events: mio_events, .. } = &mut self.poller else {
            return Err(io::Error::other("this Net is driven by a shared event loop"));
        };
        match poll.poll(mio_events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // Taken out so the connections can be worked on while it is read; an empty
        // `Events` allocates nothing.
        let ready = std::mem::replace(mio_events, Events::with_capacity(0));
        self.process(ready.iter().map(Ready::of), events);
        if let Poller::Own { events: mio_events, .. } = &mut self.poller {
            *mio_events = ready;
        }
        Ok(())
    }

    /// Handle the readiness of this `Net`'s sockets (`ready`, from a shared loop's poll, or
    /// none), the events produced since the last call, the connections that may read again,
    /// and the transport's timers; append events. What `poll` does after its wait.
    pub fn process(&mut self, ready: impl IntoIterator<Item = Ready>, events: &mut Vec<NetEvent>) {
        if !self.deferred.is_empty() {
            events.append(&mut std::mem::take(&mut self.deferred)); // its buffer goes too
        }
        let now = Instant::now();
        for r in ready {
            match r.local() {
                LISTENER => self.accept(now),
                WAKER => {}
                t => self.conn_ready(t as ConnId, r.readable, r.writable, now, events),
            }
        }
        for id in std::mem::take(&mut self.resumable) {
            self.conn_ready(id, false, false, now, events);
        }
        self.run_timers(now, events);
        self.scratch.release();
    }

    /// When `process` must run next with no readiness: a transport timer, or now when
    /// events or paused connections wait.
    pub fn deadline(&self) -> Instant {
        if !self.deferred.is_empty() || !self.resumable.is_empty() {
            return Instant::now();
        }
        self.next_check
    }

    fn arm(&mut self, at: Instant) {
        if at < self.next_check {
            self.next_check = at;
        }
    }

    /// A connection is ready (or, neither readable nor writable, its output drained while
    /// paused): write, read or resume reading, then settle the budgets.
    fn conn_ready(&mut self, id: ConnId, readable: bool, writable: bool, now: Instant, events: &mut Vec<NetEvent>) {
        let (secret, scratch, stall) = (&self.secret, &mut self.scratch, self.request_timeout);
        let worked = self.conns.work(id, |c| {
            let was_paused = c.paused;
            let result = (|| {
            if !c.connected {
                if !c.check_connected()? {
                    return Ok(());
                }
                c.hello(secret)?;
            } else if writable {
                c.flush(now)?;
            }
            if c.may_resume() {
                // The output drained: decode what waited and read again (the readiness edge
                // may have passed while paused).
                c.last_active = now;
                c.resume(secret, scratch.get(), events)?;
            } else if readable && !c.paused {
                c.last_active = now;
                c.read_all(secret, scratch.get(), events)?;
            }
            Ok::<(), ConnError>(())
            })();
            (result, !was_paused && c.paused, c.stall_deadline(stall), c.unsent())
        });
        let Some((result, paused, stall, unsent)) = worked else {
            return;
        };
        self.defences.paused += u64::from(paused);
        if let Some(at) = stall {
            self.arm(at);
        }
        self.settle(id, result, unsent, events);
    }

    fn note(&mut self, e: &ConnError) {
        log::debug!("connection closed: {e}");
        self.failures += 1;
        self.last_failure = Some(e.to_string());
    }

    /// Drop a connection, failing every request still waiting on it.
    fn close(&mut self, id: ConnId, events: &mut Vec<NetEvent>) {
        let Some(mut c) = self.conns.remove(id) else {
            return;
        };
        let _ = self.poller.registry().deregister(&mut c.sock);
        self.closed_bytes.0 += c.bytes_out;
        self.closed_bytes.1 += c.bytes_in;
        c.fail_all(events);
    }

    /// Whether a new connection in one direction may open, after closing an idle one
    /// (`policy`) if a bound asks for it.
    fn make_room(&mut self, outbound: bool, now: Instant) -> bool {
        match self.conns.room(outbound, now) {
            Room::Free => true,
            Room::Evict(id) => {
                // Idle: no request to fail.
                let mut none = Vec::new();
                self.close(id, &mut none);
                self.defences.evicted += 1;
                true
            }
            Room::Full => false,
        }
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
            // Each refusal drops the socket: closed before a byte is read.
            if !self.conns.admits(peer) {
                self.defences.refused_per_ip += 1;
                continue;
            }
            if !self.make_room(false, now) {
                self.defences.refused_full += 1;
                continue; // every inbound connection is busy or protected
            }
            let id = self.next_id;
            let token = self.poller.token(id as usize);
            if sock.set_nodelay(true).is_err()
                || self.poller.registry().register(&mut sock, token, Interest::READABLE | Interest::WRITABLE).is_err()
            {
                continue;
            }
            self.next_id += 1;
            let deadline = now + self.request_timeout;
            self.conns.insert(Box::new(Conn::accepted(id, sock, peer, deadline, now)));
            self.arm(deadline);
        }
    }

    /// Open a connection to `to` for the request framed in the scratch set's `enc` (sent once
    /// the connect completes, with the requests queued by then: `Conn::hello`); its id, None
    /// if it failed (the request's failure is deferred).
    fn dial(
        &mut self,
        token: u64,
        to: SocketAddr,
        expected: Option<[u8; 32]>,
        deadline: Instant,
        now: Instant,
    ) -> Option<ConnId> {
        if !self.make_room(true, now) {
            self.deferred.push(NetEvent::Failed { token });
            return None;
        }
        let id = self.next_id;
        let Ok(sock) = dial::open(self.poller.registry(), self.poller.token(id as usize), self.local.ip(), to) else {
            self.deferred.push(NetEvent::Failed { token });
            return None;
        };
        self.next_id += 1;
        let ka = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE).with_interval(KEEPALIVE_INTERVAL);
        // Best effort: without it the connection still works, only idle ones may be dropped.
        let _ = socket2::SockRef::from(&sock).set_tcp_keepalive(&ka);
        let first = Pending { token, deadline, retry: None };
        self.conns.insert(Box::new(Conn::dialed(id, sock, to, expected, &self.scratch.get().enc, first, now)));
        self.arm(deadline);
        Some(id)
    }

    /// Close connections past a deadline and compute when to look again.
    fn run_timers(&mut self, now: Instant, events: &mut Vec<NetEvent>) {
        if now < self.next_check {
            return;
        }
        let (idle, stall) = (self.idle_timeout, self.request_timeout);
        let (expired, next) = self.conns.expired(now, now + MAX_TIMER_SLEEP, idle, stall);
        for id in expired {
            match self.conns.get(id) {
                Some(c) if c.unsent() > 0 && !c.outbound => {
                    self.defences.closed_output += 1;
                    self.note(&ConnError::Protocol("replies not read"));
                }
                Some(c) if !c.is_idle() => self.note(&ConnError::Protocol("timed out")),
                _ => {}
            }
            self.close(id, events);
        }
        self.next_check = next;
    }
}

#[cfg(test)]
mod tests;
