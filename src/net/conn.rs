//! One TCP connection (PROTOCOL.md §3): socket I/O, records, the handshake's actions
//! applied, the decrypted byte stream split into frames (`wire::frame`), and requests
//! matched to replies. Its reading side is `input`.
//!
//! An accepting connection bounds its output (issue 13): each request read reserves what its
//! reply may cost (`LARGE_REPLY` for a `ref`, `SMALL_REPLY` otherwise), and once its unsent
//! output plus those reservations reach `OUTPUT_PAUSE_BYTES` it reads no more requests until
//! its dialer has read enough of the replies.

use super::event::{ConnError, ConnId, NetEvent};
use super::noise::{Handshake, Session};
use super::record::{self, HEADER_LEN, MAX_CHUNK};
use super::scratch::Pool;
use crate::consts::{MAX_IN_FLIGHT_PER_CONNECTION, OUTPUT_PAUSE_BYTES};
use crate::wire::frame::FrameDecoder;
use crate::wire::Request;
use mio::net::TcpStream;
use snow::TransportState;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a reply other than a `ref`'s may add to the output, at most (`input::large_reply`).
pub(super) const SMALL_REPLY: usize = 8 * 1024;
/// A whole message sealed: frame header, and 18 bytes per 16 KiB record (header and tag).
pub(super) const LARGE_REPLY: usize = crate::consts::MAX_MESSAGE + 4 + (crate::consts::MAX_MESSAGE / MAX_CHUNK + 1) * 18;
// Unanswered requests are one bit each in a u64.
const _: () = assert!(MAX_IN_FLIGHT_PER_CONNECTION <= 64);

/// A request awaiting its reply (dialer side), in send order.
pub(super) struct Pending {
    pub token: u64,
    pub deadline: Instant,
    /// Sent on a reused idle connection: sent again, once, on a new connection if this one
    /// closes before any byte of a reply arrived (requests are idempotent, PROTOCOL.md §3).
    pub retry: Option<Box<Retry>>,
}

/// What sending a request again takes.
pub(super) struct Retry {
    pub request: Request,
    pub expected: Option<[u8; 32]>,
}

/// A request that arrived before the handshake's first message left (it will ride in IK
/// message 1, `hello`) or while the handshake was running: held back because in XX the
/// responder's key, which the request may insist on, is not known yet.
pub(super) struct Queued {
    pub(super) token: u64,
    pub(super) deadline: Instant,
    pub(super) expected: Option<[u8; 32]>,
    pub(super) frame: Vec<u8>,
}

/// Everything only a handshaking connection needs; dropped when it completes.
pub(super) struct Opening {
    pub(super) noise: Handshake,
    /// The handshake fails if not complete by then.
    deadline: Instant,
    /// Dialer: requests held back until message 1 is written (`hello`) or, when they did
    /// not ride in it, until the responder's key is known.
    pub(super) queued: Vec<Queued>,
    /// Dialer: the bytes of the requests that rode in message 1 but did not fit in it; their
    /// tokens are already pending.
    pub(super) unsent: Vec<u8>,
}

/// Spare handshake boxes (~1 KiB each), shared by every peer of the process: a connection
/// needs one only for its first round trip, and each event-loop thread's allocator cache
/// would otherwise keep several freed ones.
static SPARE: Pool<Opening> = Pool::new(64);

impl Opening {
    /// A handshake in a spare box when there is one.
    fn boxed(noise: Handshake, deadline: Instant) -> Box<Opening> {
        let o = Opening { noise, deadline, queued: Vec::new(), unsent: Vec::new() };
        match SPARE.take() {
            Some(mut b) => {
                *b = o;
                b
            }
            None => Box::new(o),
        }
    }

    /// Done with (complete or abandoned): free what it holds and keep the box.
    fn recycle(mut self: Box<Self>) {
        self.noise = Handshake::Spent;
        self.queued = Vec::new();
        self.unsent = Vec::new();
        SPARE.give(self);
    }
}

pub(super) enum Phase {
    Handshake(Box<Opening>),
    Open(TransportState),
}

/// Bytes a connection holds between events: output its socket refused, an incomplete
/// record, an incomplete frame. Boxed, and present only while one of them is non-empty,
/// so an idle connection pays one pointer for them.
#[derive(Default)]
pub(super) struct Partial {
    /// Ciphertext the socket refused; `wpos` bytes of it are already written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// An incomplete record; while paused, all the rest of the read that paused it.
    pub(super) rbuf: Vec<u8>,
    /// The decrypted stream's incomplete frame.
    pub(super) frames: FrameDecoder,
    /// While paused: whole frames of the record that paused it, after the pausing one.
    pub(super) held: Vec<u8>,
}

impl Partial {
    fn is_empty(&self) -> bool {
        self.wbuf.is_empty() && self.rbuf.is_empty() && self.frames.buffered() == 0 && self.held.is_empty()
    }
}

/// What a connection holds that counts against its `Net`'s budgets, in heap bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(super) struct Meter {
    /// Unsent replies (accepting side only: a dialer's output is its own requests).
    pub replies: usize,
    /// Incomplete records and frames, and input held while paused.
    pub input: usize,
}

pub(super) struct Conn {
    pub id: ConnId,
    pub sock: TcpStream,
    pub peer: SocketAddr,
    /// We dialed it (we send requests) rather than accepted it (we send replies).
    pub outbound: bool,
    /// The TCP connect has completed.
    pub connected: bool,
    /// Valid once the handshake is complete.
    pub(super) remote_static: [u8; 32],
    pub(super) phase: Phase,
    pub(super) part: Option<Box<Partial>>,
    /// Dialer: requests sent (during the handshake: committed to it) and not yet answered.
    pub(super) pending: VecDeque<Pending>,
    /// Acceptor: requests handed to the loop and not yet answered.
    pub(super) unanswered: usize,
    /// Acceptor: bit i set when the reply to the i-th oldest unanswered request may be large.
    pub(super) large: u64,
    /// Acceptor: reading stopped until the output drains (`over_pause`).
    pub paused: bool,
    /// Carried useful traffic: answered a request (acceptor) or got a reply (dialer).
    pub useful: bool,
    /// Dialer: `bytes_in` when a request was last sent on it while idle; requests sent while
    /// it still equals `bytes_in` may be retried (`Retry`).
    quiet_mark: Option<u64>,
    /// When the unsent output last moved (or appeared): stalled too long, the dialer is gone.
    out_since: Instant,
    pub last_active: Instant,
    /// TCP bytes written and read on it (statistics).
    pub bytes_out: u64,
    pub bytes_in: u64,
}

impl Conn {
    fn new(id: ConnId, sock: TcpStream, peer: SocketAddr, outbound: bool, o: Box<Opening>, now: Instant) -> Conn {
        Conn {
            id,
            sock,
            peer,
            outbound,
            connected: !outbound,
            remote_static: [0; 32],
            phase: Phase::Handshake(o),
            part: None,
            pending: VecDeque::new(),
            unanswered: 0,
            large: 0,
            paused: false,
            useful: false,
            quiet_mark: None,
            out_since: now,
            last_active: now,
            bytes_out: 0,
            bytes_in: 0,
        }
    }

    /// An accepted connection, waiting for the dialer's first record until `deadline`.
    pub fn accepted(id: ConnId, sock: TcpStream, peer: SocketAddr, deadline: Instant, now: Instant) -> Conn {
        Conn::new(id, sock, peer, false, Opening::boxed(Handshake::Accepting, deadline), now)
    }

    /// A connection being dialed to `peer`, which must prove `expected` if some (IK), and
    /// whose first request is `frame` (for `first`). Message 1 is written once the TCP
    /// connect completes (`hello`).
    pub fn dialed(
        id: ConnId,
        sock: TcpStream,
        peer: SocketAddr,
        expected: Option<[u8; 32]>,
        frame: &[u8],
        first: Pending,
        now: Instant,
    ) -> Conn {
        let mut o = Opening::boxed(Handshake::Connecting { expected }, first.deadline);
        o.queued.push(Queued { token: first.token, deadline: first.deadline, expected, frame: frame.to_vec() });
        Conn::new(id, sock, peer, true, o, now)
    }

    /// The TCP connect completed: write handshake message 1. In IK every request queued so
    /// far rides in it (as much as fits one record; the rest follows message 2), so the
    /// `iam` introduction and the request behind it cost one round trip, not two; in XX
    /// nothing rides, the requests wait for message 3. `secret`: this peer's static key.
    pub fn hello(&mut self, secret: &[u8; 32]) -> Result<(), ConnError> {
        let Phase::Handshake(o) = &mut self.phase else { return Ok(()) };
        let Handshake::Connecting { expected } = o.noise else { return Ok(()) };
        let mut plain = Vec::new();
        if let Some(k) = expected {
            // `takes` let in only requests that accept this key.
            for q in std::mem::take(&mut o.queued) {
                if q.expected.is_some_and(|e| e != k) {
                    o.queued.push(q);
                    continue;
                }
                plain.extend_from_slice(&q.frame);
                self.pending.push_back(Pending { token: q.token, deadline: q.deadline, retry: None });
            }
        }
        let dial = Handshake::dial(secret, expected, &plain)?;
        o.noise = dial.handshake;
        plain.drain(..dial.carried);
        o.unsent = plain;
        self.write_out(&dial.record)?;
        Ok(())
    }

    /// The handshake is complete: switch to transport mode, recycling the handshake's box.
    pub(super) fn open(&mut self, s: Session) {
        self.remote_static = s.remote_static;
        if let Phase::Handshake(o) = std::mem::replace(&mut self.phase, Phase::Open(s.transport)) {
            o.recycle();
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Nothing is waiting on this connection: it may be closed to make room.
    pub fn is_idle(&self) -> bool {
        if self.outbound {
            self.is_open() && self.pending.is_empty()
        } else {
            self.unanswered == 0
        }
    }

    /// Requests queued or in flight (dialer).
    fn load(&self) -> usize {
        let queued = match &self.phase {
            Phase::Handshake(o) => o.queued.len(),
            Phase::Open(_) => 0,
        };
        self.pending.len() + queued
    }

    /// Whether another request, insisting on `expected` if some, may go on this connection:
    /// not if it authenticated (or must authenticate) another key, nor past the in-flight bound.
    pub fn takes(&self, expected: Option<[u8; 32]>) -> bool {
        let other_key = match (expected, &self.phase) {
            (Some(k), Phase::Open(_)) => k != self.remote_static,
            (Some(k), Phase::Handshake(o)) => o.noise.expected().is_some_and(|e| e != k),
            (None, _) => false,
        };
        !other_key && self.load() < MAX_IN_FLIGHT_PER_CONNECTION
    }

    /// Whether a request sent now may be retried if the connection then closes before any
    /// byte of a reply: it is open and idle (reused after a pause, when the acceptor may just
    /// have closed it), or nothing arrived since it last was.
    pub fn quiet(&mut self) -> bool {
        if self.is_open() && self.pending.is_empty() {
            self.quiet_mark = Some(self.bytes_in);
        }
        self.quiet_mark == Some(self.bytes_in)
    }

    /// Closed by the peer: the requests that may be sent again (`quiet` when they were sent,
    /// and still nothing arrived), taken out so that only the others fail.
    pub fn take_retries(&mut self) -> Vec<(u64, Instant, Retry)> {
        if self.quiet_mark != Some(self.bytes_in) {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.pending.retain_mut(|p| match p.retry.take() {
            Some(r) => {
                out.push((p.token, p.deadline, *r));
                false
            }
            None => true,
        });
        out
    }

    /// Send one framed request, or hold it back until the handshake completes.
    pub fn request(
        &mut self,
        p: Pending,
        expected: Option<[u8; 32]>,
        frame: &[u8],
        crypt: &mut [u8],
        now: Instant,
    ) -> Result<(), ConnError> {
        match &mut self.phase {
            Phase::Handshake(o) => {
                o.queued.push(Queued { token: p.token, deadline: p.deadline, expected, frame: frame.to_vec() });
                Ok(())
            }
            Phase::Open(_) => {
                self.pending.push_back(p);
                self.last_active = now;
                self.send_plain(frame, crypt)
            }
        }
    }

    /// Output not yet taken by the socket.
    pub fn unsent(&self) -> usize {
        self.part.as_ref().map_or(0, |p| p.wbuf.len() - p.wpos)
    }

    /// What the replies to the unanswered requests may still add to the output.
    fn reserved(&self) -> usize {
        let large = self.large.count_ones() as usize;
        large * LARGE_REPLY + (self.unanswered - large) * SMALL_REPLY
    }

    /// An accepting connection whose unsent output, with what its unanswered requests'
    /// replies may add, has reached the pause threshold: it reads no more requests.
    pub(super) fn over_pause(&self) -> bool {
        !self.outbound && self.unsent() + self.reserved() >= OUTPUT_PAUSE_BYTES
    }

    /// Paused, and its output has drained enough to read on (`resume`).
    pub fn may_resume(&self) -> bool {
        self.paused && !self.over_pause()
    }

    /// What this connection holds against its `Net`'s budgets.
    pub fn meter(&self) -> Meter {
        self.part.as_ref().map_or(Meter::default(), |p| Meter {
            replies: if self.outbound { 0 } else { p.wbuf.capacity() },
            input: p.rbuf.capacity() + p.frames.capacity() + p.held.capacity(),
        })
    }

    /// Bytes held of an incomplete frame (header included), for choosing whom to close.
    pub fn partial_frame(&self) -> usize {
        self.part.as_ref().map_or(0, |p| p.frames.buffered())
    }

    /// An accepted, open connection with a request the loop has not answered yet.
    pub fn awaits_reply(&self) -> bool {
        !self.outbound && self.unanswered > 0 && self.is_open()
    }

    /// Send the framed reply to the oldest unanswered request.
    pub fn reply(&mut self, frame: &[u8], crypt: &mut [u8], now: Instant) -> Result<(), ConnError> {
        self.unanswered = self.unanswered.saturating_sub(1);
        self.large >>= 1;
        self.last_active = now;
        self.useful = true;
        self.send_plain(frame, crypt)
    }

    /// The connection is closed: every request still waiting on it fails, in send order.
    pub fn fail_all(self, events: &mut Vec<NetEvent>) {
        for p in self.pending {
            events.push(NetEvent::Failed { token: p.token });
        }
        if let Phase::Handshake(o) = self.phase {
            for q in &o.queued {
                events.push(NetEvent::Failed { token: q.token });
            }
            o.recycle();
        }
    }

    /// Heap bytes this connection holds in its buffers (for diagnostics and tests).
    pub fn buffered(&self) -> usize {
        let part = self.part.as_ref().map_or(0, |p| {
            std::mem::size_of::<Partial>()
                + p.wbuf.capacity()
                + p.rbuf.capacity()
                + p.frames.capacity()
                + p.held.capacity()
        });
        part + self.pending.capacity() * std::mem::size_of::<Pending>()
    }

    pub(super) fn part(&mut self) -> &mut Partial {
        self.part.get_or_insert_with(Box::default)
    }

    /// Free the partial buffers once all are empty.
    pub(super) fn tidy(&mut self) {
        if self.part.as_ref().is_some_and(|p| p.is_empty()) {
            self.part = None;
        }
    }

    /// When this connection must be closed if nothing changes: the oldest request's
    /// deadline, the handshake deadline, the end of its idle time, or `stall` after its
    /// unsent output last moved (its dialer, which gives up on a request after as long, is not
    /// reading). None: no deadline (an acceptor waiting for the loop's replies).
    pub fn deadline(&self, idle: Duration, inbound_idle: Duration, stall: Duration) -> Option<Instant> {
        let first = self.pending.front().map(|p| p.deadline);
        let d = match &self.phase {
            Phase::Handshake(o) => Some(first.map_or(o.deadline, |d| d.min(o.deadline))),
            Phase::Open(_) if self.outbound => Some(first.unwrap_or(self.last_active + idle)),
            Phase::Open(_) if self.unanswered > 0 => None,
            Phase::Open(_) => Some(self.last_active + inbound_idle),
        };
        match self.stall_deadline(stall) {
            Some(s) => Some(d.map_or(s, |d| d.min(s))),
            None => d,
        }
    }

    /// When unsent output that stopped moving will have stalled for `stall`, if there is some.
    pub fn stall_deadline(&self, stall: Duration) -> Option<Instant> {
        (self.connected && self.unsent() > 0).then(|| self.out_since + stall)
    }

    /// Write `data` now as far as the socket takes it; keep the rest for `flush`.
    pub(super) fn write_out(&mut self, data: &[u8]) -> io::Result<()> {
        let mut off = 0;
        if self.connected && self.part.as_ref().is_none_or(|p| p.wpos == p.wbuf.len()) {
            while off < data.len() {
                match self.sock.write(&data[off..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        off += n;
                        self.bytes_out += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if off < data.len() {
            if self.unsent() == 0 {
                self.out_since = Instant::now();
            }
            let p = self.part();
            if p.wpos > 0 && p.wpos >= p.wbuf.len() / 2 {
                p.wbuf.drain(..p.wpos);
                p.wpos = 0;
            }
            p.wbuf.extend_from_slice(&data[off..]);
        }
        Ok(())
    }

    /// Write buffered output until done or the socket is full.
    pub fn flush(&mut self, now: Instant) -> io::Result<()> {
        let Some(p) = &mut self.part else {
            return Ok(());
        };
        while p.wpos < p.wbuf.len() {
            match self.sock.write(&p.wbuf[p.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    p.wpos += n;
                    self.bytes_out += n as u64;
                    self.out_since = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if p.wpos > 0 && p.wpos >= p.wbuf.len() / 2 {
                        // Half sent: give the sent half back rather than hold it until done.
                        p.wbuf.drain(..p.wpos);
                        p.wpos = 0;
                        p.wbuf.shrink_to(2 * p.wbuf.len());
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Emptied: an idle connection holds no output buffer.
        p.wpos = 0;
        p.wbuf = Vec::new();
        self.tidy();
        Ok(())
    }

    /// A dialing socket got an event: has the connect completed (Ok(true)), or failed?
    pub fn check_connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.sock.take_error()? {
            return Err(e);
        }
        match self.sock.peer_addr() {
            Ok(_) => {
                self.connected = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected || e.raw_os_error() == Some(libc::EINPROGRESS) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Encrypt a stretch of the plaintext stream as transport messages and send them.
    pub(super) fn send_plain(&mut self, plain: &[u8], crypt: &mut [u8]) -> Result<(), ConnError> {
        for chunk in plain.chunks(MAX_CHUNK) {
            let ts = match &mut self.phase {
                Phase::Open(ts) => ts,
                Phase::Handshake(_) => return Err(ConnError::Protocol("send before handshake")),
            };
            let n = ts.write_message(chunk, &mut crypt[HEADER_LEN..])?;
            self.write_out(record::finish(crypt, n))?;
        }
        Ok(())
    }
}

/// Run a decoder on untrusted bytes; a panic in it (a bug) costs this connection, not the peer.
pub(super) fn guarded<T, E>(f: impl FnOnce() -> Result<T, E>) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok().and_then(|r| r.ok())
}

#[cfg(test)]
mod tests;
