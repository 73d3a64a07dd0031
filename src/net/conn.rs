//! One TCP connection (PROTOCOL.md §3): socket I/O, records, the handshake's actions
//! applied, the decrypted byte stream split into frames (`wire::frame`), and requests
//! matched to replies.

use super::event::{ConnError, ConnId, NetEvent};
use super::noise::{Action, Confirmed, Dial, Finished, Handshake, Session};
use super::record::{self, record_len, HEADER_LEN, MAX_CHUNK};
use super::scratch::{Pool, Scratch};
use crate::consts::MAX_IN_FLIGHT_PER_CONNECTION;
use crate::wire::frame::FrameDecoder;
use crate::wire::{decode_reply, decode_request};
use mio::net::TcpStream;
use snow::TransportState;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A request awaiting its reply (dialer side), in send order.
pub(super) struct Pending {
    pub token: u64,
    pub deadline: Instant,
}

/// A request that arrived while the handshake was still running: held back because in XX
/// the responder's key, which the request may insist on, is not known yet.
struct Queued {
    token: u64,
    deadline: Instant,
    expected: Option<[u8; 32]>,
    frame: Vec<u8>,
}

/// Everything only a handshaking connection needs; dropped when it completes.
struct Opening {
    noise: Handshake,
    /// The handshake fails if not complete by then.
    deadline: Instant,
    /// Dialer: requests held back until the responder's key is known.
    queued: Vec<Queued>,
    /// Dialer: the first request's bytes that did not ride in message 1 (all of them in XX);
    /// its token is already pending.
    unsent: Vec<u8>,
}

/// Spare handshake boxes (~1 KiB each), shared by every peer of the process: a connection
/// needs one only for its first round trip, and a peer thread's allocator cache would
/// otherwise keep several freed ones per thread.
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

enum Phase {
    Handshake(Box<Opening>),
    Open(TransportState),
}

/// Bytes a connection holds between events: output its socket refused, an incomplete
/// record, an incomplete frame. Boxed, and present only while one of them is non-empty,
/// so an idle connection pays one pointer for them.
#[derive(Default)]
struct Partial {
    /// Ciphertext the socket refused; `wpos` bytes of it are already written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// An incomplete record.
    rbuf: Vec<u8>,
    /// The decrypted stream's incomplete frame.
    frames: FrameDecoder,
}

impl Partial {
    fn is_empty(&self) -> bool {
        self.wbuf.is_empty() && self.rbuf.is_empty() && self.frames.buffered() == 0
    }
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
    remote_static: [u8; 32],
    phase: Phase,
    part: Option<Box<Partial>>,
    /// Dialer: requests sent (during the handshake: committed to it) and not yet answered.
    pending: VecDeque<Pending>,
    /// Acceptor: requests handed to the loop and not yet answered.
    unanswered: usize,
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
            last_active: now,
            bytes_out: 0,
            bytes_in: 0,
        }
    }

    /// An accepted connection, waiting for the dialer's first record until `deadline`.
    pub fn accepted(id: ConnId, sock: TcpStream, peer: SocketAddr, deadline: Instant, now: Instant) -> Conn {
        Conn::new(id, sock, peer, false, Opening::boxed(Handshake::Accepting, deadline), now)
    }

    /// A connection being dialed, whose handshake started with `dial` and whose first
    /// request is `frame` (for `first`). The first record is sent once the TCP connect
    /// completes; the request's bytes that did not ride in it wait for the handshake.
    pub fn dialed(
        id: ConnId,
        sock: TcpStream,
        peer: SocketAddr,
        dial: Dial,
        frame: &[u8],
        first: Pending,
        now: Instant,
    ) -> Conn {
        let mut o = Opening::boxed(dial.handshake, first.deadline);
        o.unsent.extend_from_slice(&frame[dial.carried..]);
        let mut c = Conn::new(id, sock, peer, true, o, now);
        c.pending.push_back(first);
        c.write_later(dial.record);
        c
    }

    /// The handshake is complete: switch to transport mode, recycling the handshake's box.
    fn open(&mut self, s: Session) {
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

    /// An accepted, open connection with a request the loop has not answered yet.
    pub fn awaits_reply(&self) -> bool {
        !self.outbound && self.unanswered > 0 && self.is_open()
    }

    /// Send the framed reply to the oldest unanswered request.
    pub fn reply(&mut self, frame: &[u8], crypt: &mut [u8], now: Instant) -> Result<(), ConnError> {
        self.unanswered = self.unanswered.saturating_sub(1);
        self.last_active = now;
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
            std::mem::size_of::<Partial>() + p.wbuf.capacity() + p.rbuf.capacity() + p.frames.capacity()
        });
        part + self.pending.capacity() * std::mem::size_of::<Pending>()
    }

    fn part(&mut self) -> &mut Partial {
        self.part.get_or_insert_with(Box::default)
    }

    /// Free the partial buffers once all are empty.
    fn tidy(&mut self) {
        if self.part.as_ref().is_some_and(|p| p.is_empty()) {
            self.part = None;
        }
    }

    /// When this connection must be closed if nothing changes: the oldest request's
    /// deadline, the handshake deadline, or the end of its idle time. None: no deadline
    /// (an acceptor waiting for the loop's replies).
    pub fn deadline(&self, idle: Duration, inbound_idle: Duration) -> Option<Instant> {
        let first = self.pending.front().map(|p| p.deadline);
        match &self.phase {
            Phase::Handshake(o) => Some(first.map_or(o.deadline, |d| d.min(o.deadline))),
            Phase::Open(_) if self.outbound => Some(first.unwrap_or(self.last_active + idle)),
            Phase::Open(_) if self.unanswered > 0 => None,
            Phase::Open(_) => Some(self.last_active + inbound_idle),
        }
    }

    /// Write `data` now as far as the socket takes it; keep the rest for `flush`.
    fn write_out(&mut self, data: &[u8]) -> io::Result<()> {
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
            let p = self.part();
            if p.wpos > 0 && p.wpos >= p.wbuf.len() / 2 {
                p.wbuf.drain(..p.wpos);
                p.wpos = 0;
            }
            p.wbuf.extend_from_slice(&data[off..]);
        }
        Ok(())
    }

    /// Keep `data` whole for `flush` (the socket is not connected yet); an empty output
    /// buffer becomes `data` itself, without a copy.
    fn write_later(&mut self, data: Vec<u8>) {
        let p = self.part();
        if p.wbuf.is_empty() {
            p.wpos = 0;
            p.wbuf = data;
        } else {
            p.wbuf.extend_from_slice(&data);
        }
    }

    /// Write buffered output until done or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(p) = &mut self.part else {
            return Ok(());
        };
        while p.wpos < p.wbuf.len() {
            match self.sock.write(&p.wbuf[p.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    p.wpos += n;
                    self.bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
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
    fn send_plain(&mut self, plain: &[u8], crypt: &mut [u8]) -> Result<(), ConnError> {
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

    /// Read until the socket has nothing more, handling every complete record.
    /// `secret` is this peer's static key, for a handshake it answers.
    pub fn read_all(
        &mut self,
        secret: &[u8; 32],
        bufs: &mut Scratch,
        events: &mut Vec<NetEvent>,
    ) -> Result<(), ConnError> {
        let Scratch { rx, crypt, .. } = bufs;
        loop {
            let n = match self.sock.read(rx) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.bytes_in += n as u64;
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.on_bytes(&rx[..n], secret, crypt, events)?;
        }
    }

    /// Split received bytes into records: whole ones are handled straight from `data`,
    /// only an incomplete tail is copied into `rbuf`.
    fn on_bytes(
        &mut self,
        mut data: &[u8],
        secret: &[u8; 32],
        crypt: &mut [u8],
        events: &mut Vec<NetEvent>,
    ) -> Result<(), ConnError> {
        if let Some(p) = self.part.as_mut().filter(|p| !p.rbuf.is_empty()) {
            // Complete the record started by an earlier read.
            let rbuf = &mut p.rbuf;
            if rbuf.len() < HEADER_LEN {
                let take = (HEADER_LEN - rbuf.len()).min(data.len());
                rbuf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if rbuf.len() < HEADER_LEN {
                    return Ok(());
                }
            }
            let want = HEADER_LEN + record_len(rbuf)?;
            rbuf.reserve_exact(want - rbuf.len());
            let take = (want - rbuf.len()).min(data.len());
            rbuf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if rbuf.len() < want {
                return Ok(());
            }
            // Taken (and freed once handled): an idle connection holds no input buffer.
            let rec = std::mem::take(rbuf);
            self.tidy();
            self.on_record(&rec[HEADER_LEN..], secret, crypt, events)?;
        }
        while data.len() >= HEADER_LEN {
            let end = HEADER_LEN + record_len(data)?;
            let Some(rec) = data.get(HEADER_LEN..end) else {
                break;
            };
            self.on_record(rec, secret, crypt, events)?;
            data = &data[end..];
        }
        if !data.is_empty() {
            // A record is at most 16 KiB: reserved whole, it is copied once.
            let want = if data.len() >= HEADER_LEN { HEADER_LEN + record_len(data)? } else { HEADER_LEN };
            let rbuf = &mut self.part().rbuf;
            rbuf.reserve_exact(want);
            rbuf.extend_from_slice(data);
        }
        Ok(())
    }

    fn on_record(
        &mut self,
        rec: &[u8],
        secret: &[u8; 32],
        crypt: &mut [u8],
        events: &mut Vec<NetEvent>,
    ) -> Result<(), ConnError> {
        let o = match &mut self.phase {
            Phase::Open(ts) => {
                let n = ts.read_message(rec, crypt)?;
                return self.feed_plain(&crypt[..n], events);
            }
            Phase::Handshake(o) => o,
        };
        match o.noise.on_record(rec, secret, crypt)? {
            Action::Send(reply) => self.write_out(reply.record())?,
            Action::Open { reply, session, plain } => {
                if let Some(r) = reply {
                    self.write_out(r.record())?;
                }
                self.open(session);
                self.feed_plain(plain, events)?;
            }
            Action::Confirmed(c) => self.confirmed(c, crypt, events)?,
        }
        Ok(())
    }

    /// Dialer, message 2 read: send everything that waited for the handshake, in order (the
    /// first request's unsent bytes, then the held-back requests whose key, if they named
    /// one, is the responder's), its head in XX message 3.
    fn confirmed(&mut self, c: Confirmed, crypt: &mut [u8], events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        let remote = c.remote_static();
        let Phase::Handshake(o) = &mut self.phase else {
            return Err(ConnError::Protocol("handshake state lost"));
        };
        let mut plain = std::mem::take(&mut o.unsent);
        for q in std::mem::take(&mut o.queued) {
            if q.expected.is_some_and(|k| k != remote) {
                events.push(NetEvent::Failed { token: q.token });
            } else {
                plain.extend_from_slice(&q.frame);
                self.pending.push_back(Pending { token: q.token, deadline: q.deadline });
            }
        }
        let Finished { session, record, carried } = c.finish(&plain, crypt)?;
        if !record.is_empty() {
            self.write_out(record)?;
        }
        self.open(session);
        self.send_plain(&plain[carried..], crypt)
    }

    /// Split decrypted bytes into frames: whole ones are decoded in place, an incomplete
    /// one is kept by the decoder (in the partial box).
    fn feed_plain(&mut self, data: &[u8], events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        // Taken out so frames can be handled while `self` is lent to them; an empty
        // decoder holds no heap memory, so this costs nothing when no frame is partial.
        let mut frames = self.part.as_mut().map(|p| std::mem::take(&mut p.frames)).unwrap_or_default();
        let r = frames.push(data, |body| self.on_frame(body, events));
        if frames.buffered() > 0 {
            self.part().frames = frames;
        } else {
            self.tidy();
        }
        r
    }

    fn on_frame(&mut self, body: &[u8], events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        if self.outbound {
            if self.pending.is_empty() {
                return Err(ConnError::Protocol("reply without a request"));
            }
            let reply = guarded(|| decode_reply(body)).ok_or(ConnError::Protocol("malformed reply"))?;
            let token = self.pending.pop_front().map(|p| p.token).unwrap_or_default();
            if self.pending.is_empty() {
                // Nothing in flight: an idle connection holds no queue.
                self.pending = VecDeque::new();
            }
            events.push(NetEvent::Reply { token, reply, remote_static: self.remote_static });
        } else {
            if self.unanswered >= MAX_IN_FLIGHT_PER_CONNECTION {
                return Err(ConnError::Protocol("too many requests in flight"));
            }
            let request = guarded(|| decode_request(body)).ok_or(ConnError::Protocol("malformed request"))?;
            self.unanswered += 1;
            events.push(NetEvent::Request {
                conn: self.id,
                from: self.peer,
                remote_static: self.remote_static,
                request,
            });
        }
        Ok(())
    }
}

/// Run a decoder on untrusted bytes; a panic in it (a bug) costs this connection, not the peer.
fn guarded<T, E>(f: impl FnOnce() -> Result<T, E>) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok().and_then(|r| r.ok())
}

#[cfg(test)]
mod tests;
