//! One TCP connection: socket I/O, records (u16 length + Noise message), the decrypted
//! frame stream (SPEC 2 frames), and matching requests to replies.

use super::noise::{Handshake, MAX_CHUNK, MAX_RECORD};
use super::scratch::{self, Scratch};
use super::{ConnId, NetEvent};
use crate::consts::{MAX_IN_FLIGHT_PER_CONNECTION, MAX_MESSAGE};
use crate::wire::{decode_reply, decode_request};
use mio::net::TcpStream;
use snow::TransportState;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Why a connection is being closed.
#[derive(Debug)]
pub(super) enum ConnError {
    Io(io::Error),
    Noise(snow::Error),
    Protocol(&'static str),
    /// The peer closed the connection.
    Closed,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "I/O: {}", e),
            ConnError::Noise(e) => write!(f, "Noise: {}", e),
            ConnError::Protocol(s) => f.write_str(s),
            ConnError::Closed => f.write_str("closed by peer"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

impl From<snow::Error> for ConnError {
    fn from(e: snow::Error) -> Self {
        ConnError::Noise(e)
    }
}

/// State of the event loop that connections borrow while they work. The scratch buffers
/// are the process's (`scratch`), held only while one call of the `Net` runs.
pub(super) struct Shared {
    pub secret: [u8; 32],
    bufs: Option<Box<Scratch>>,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Shared {
    pub fn new(secret: [u8; 32]) -> Shared {
        Shared {
            secret,
            bufs: None,
            request_timeout: Duration::from_micros(crate::consts::REQUEST_TIMEOUT_US),
            idle_timeout: Duration::from_micros(crate::consts::IDLE_TIMEOUT_US),
        }
    }

    /// The scratch buffers, checked out of the process pool on first use.
    pub fn bufs(&mut self) -> &mut Scratch {
        self.bufs.get_or_insert_with(scratch::take)
    }

    /// Hand the scratch buffers back (the call is done with them).
    pub fn release(&mut self) {
        if let Some(b) = self.bufs.take() {
            scratch::give(b);
        }
    }

    #[cfg(test)]
    pub fn holds_bufs(&self) -> bool {
        self.bufs.is_some()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.release();
    }
}

/// A request awaiting its reply (dialer side), in send order.
pub(super) struct Pending {
    pub token: u64,
    pub deadline: Instant,
}

pub(super) enum Phase {
    Handshake(Box<Handshake>),
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
    /// An incomplete decrypted frame (header included).
    frame: Vec<u8>,
}

impl Partial {
    fn is_empty(&self) -> bool {
        self.wbuf.is_empty() && self.rbuf.is_empty() && self.frame.is_empty()
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
    pub remote_static: [u8; 32],
    pub phase: Phase,
    part: Option<Box<Partial>>,
    /// Dialer: requests sent and not yet answered.
    pub pending: VecDeque<Pending>,
    /// Acceptor: requests handed to the loop and not yet answered.
    pub unanswered: usize,
    pub last_active: Instant,
}

impl Conn {
    pub fn new(id: ConnId, sock: TcpStream, peer: SocketAddr, outbound: bool, phase: Phase, now: Instant) -> Conn {
        Conn {
            id,
            sock,
            peer,
            outbound,
            connected: !outbound,
            remote_static: [0; 32],
            phase,
            part: None,
            pending: VecDeque::new(),
            unanswered: 0,
            last_active: now,
        }
    }

    /// The handshake is complete: switch to transport mode, recycling the handshake's box.
    pub fn open(&mut self, ts: TransportState) {
        if let Phase::Handshake(h) = std::mem::replace(&mut self.phase, Phase::Open(ts)) {
            h.recycle();
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
    pub fn load(&self) -> usize {
        let queued = match &self.phase {
            Phase::Handshake(h) => h.queued.len(),
            Phase::Open(_) => 0,
        };
        self.pending.len() + queued
    }

    /// Heap bytes this connection holds in its buffers (for diagnostics and tests).
    pub fn buffered(&self) -> usize {
        let part = self
            .part
            .as_ref()
            .map_or(0, |p| std::mem::size_of::<Partial>() + p.wbuf.capacity() + p.rbuf.capacity() + p.frame.capacity());
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

    fn frame_len_so_far(&self) -> usize {
        self.part.as_ref().map_or(0, |p| p.frame.len())
    }

    /// When this connection must be closed if nothing changes: the oldest request's
    /// deadline, the handshake deadline, or the end of its idle time. None: no deadline
    /// (an acceptor waiting for the loop's replies).
    pub fn deadline(&self, idle: Duration, inbound_idle: Duration) -> Option<Instant> {
        let first = self.pending.front().map(|p| p.deadline);
        match &self.phase {
            Phase::Handshake(h) => Some(first.map_or(h.deadline, |d| d.min(h.deadline))),
            Phase::Open(_) if self.outbound => Some(first.unwrap_or(self.last_active + idle)),
            Phase::Open(_) if self.unanswered > 0 => None,
            Phase::Open(_) => Some(self.last_active + inbound_idle),
        }
    }

    /// Write `data` now as far as the socket takes it; keep the rest for `flush`.
    pub fn write_out(&mut self, data: &[u8]) -> io::Result<()> {
        let mut off = 0;
        if self.connected && self.part.as_ref().is_none_or(|p| p.wpos == p.wbuf.len()) {
            while off < data.len() {
                match self.sock.write(&data[off..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => off += n,
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
    pub fn write_later(&mut self, data: Vec<u8>) {
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
                Ok(n) => p.wpos += n,
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
    pub fn send_plain(&mut self, plain: &[u8], crypt: &mut [u8]) -> Result<(), ConnError> {
        for chunk in plain.chunks(MAX_CHUNK) {
            let ts = match &mut self.phase {
                Phase::Open(ts) => ts,
                Phase::Handshake(_) => return Err(ConnError::Protocol("send before handshake")),
            };
            let n = ts.write_message(chunk, &mut crypt[2..])?;
            crypt[..2].copy_from_slice(&(n as u16).to_be_bytes());
            self.write_out(&crypt[..2 + n])?;
        }
        Ok(())
    }

    /// Read until the socket has nothing more, handling every complete record.
    pub fn read_all(&mut self, sh: &mut Shared, events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        // Taken out so records can be parsed from it while `sh` is lent to them.
        let mut rx = std::mem::take(&mut sh.bufs().rx);
        let r = self.read_into(&mut rx, sh, events);
        sh.bufs().rx = rx;
        r
    }

    fn read_into(&mut self, rx: &mut [u8], sh: &mut Shared, events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        loop {
            let n = match self.sock.read(rx) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.on_bytes(&rx[..n], sh, events)?;
        }
    }

    /// Split received bytes into records: whole ones are handled straight from `data`,
    /// only an incomplete tail is copied into `rbuf`.
    fn on_bytes(&mut self, mut data: &[u8], sh: &mut Shared, events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        if let Some(p) = self.part.as_mut().filter(|p| !p.rbuf.is_empty()) {
            // Complete the record started by an earlier read.
            let rbuf = &mut p.rbuf;
            if rbuf.len() < 2 {
                let take = (2 - rbuf.len()).min(data.len());
                rbuf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if rbuf.len() < 2 {
                    return Ok(());
                }
            }
            let want = 2 + record_len(rbuf)?;
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
            self.on_record(&rec[2..], sh, events)?;
        }
        while data.len() >= 2 {
            let len = record_len(data)?;
            if data.len() < 2 + len {
                break;
            }
            self.on_record(&data[2..2 + len], sh, events)?;
            data = &data[2 + len..];
        }
        if !data.is_empty() {
            let want = if data.len() >= 2 { 2 + record_len(data)? } else { 2 };
            let rbuf = &mut self.part().rbuf;
            rbuf.reserve_exact(want);
            rbuf.extend_from_slice(data);
        }
        Ok(())
    }

    fn on_record(&mut self, rec: &[u8], sh: &mut Shared, events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        match &mut self.phase {
            Phase::Open(ts) => {
                let crypt = &mut sh.bufs().crypt;
                let n = ts.read_message(rec, crypt)?;
                self.feed_plain(&crypt[..n], events)
            }
            Phase::Handshake(_) => self.handshake_record(rec, sh, events),
        }
    }

    /// Split decrypted bytes into frames: whole ones are decoded in place, only an
    /// incomplete one is copied into `frame` (after its length passed the 1 MiB check).
    pub fn feed_plain(&mut self, mut data: &[u8], events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        while !data.is_empty() {
            if self.frame_len_so_far() == 0 && data.len() >= 4 {
                let len = frame_len(&data[..4])?;
                if data.len() >= 4 + len {
                    self.on_frame(&data[4..4 + len], events)?;
                    data = &data[4 + len..];
                    continue;
                }
            }
            let frame = &mut self.part().frame;
            if frame.len() < 4 {
                let take = (4 - frame.len()).min(data.len());
                frame.extend_from_slice(&data[..take]);
                data = &data[take..];
                if frame.len() == 4 {
                    let len = frame_len(frame)?;
                    frame.reserve_exact(len);
                }
            }
            if frame.len() >= 4 {
                let len = frame_len(&frame[..4])?;
                let take = (4 + len - frame.len()).min(data.len());
                frame.extend_from_slice(&data[..take]);
                data = &data[take..];
                if frame.len() == 4 + len {
                    let f = std::mem::take(frame);
                    self.tidy();
                    self.on_frame(&f[4..], events)?;
                }
            }
        }
        Ok(())
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

/// A record header's length, refused past `MAX_RECORD` before any of the body is kept.
fn record_len(header: &[u8]) -> Result<usize, ConnError> {
    let len = u16::from_be_bytes([header[0], header[1]]) as usize;
    if len > MAX_RECORD {
        return Err(ConnError::Protocol("record longer than the maximum"));
    }
    Ok(len)
}

/// A frame header's length, refused past SPEC 2's 1 MiB before any of the body is kept.
fn frame_len(header: &[u8]) -> Result<usize, ConnError> {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_MESSAGE {
        return Err(ConnError::Protocol("frame longer than 1 MiB"));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use crate::wire::{encode_request, Request};

    /// An accepted-side connection over a real (unused) loopback socket.
    fn inbound() -> (Conn, std::net::TcpListener) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let sock = TcpStream::connect(addr).unwrap();
        let h = Handshake::boxed(super::super::noise::Step::First, None, Instant::now());
        (Conn::new(9, sock, addr, false, Phase::Handshake(h), Instant::now()), l)
    }

    fn frames(n: u8) -> (Vec<u8>, Vec<Request>) {
        let mut stream = Vec::new();
        let mut reqs = Vec::new();
        for i in 0..n {
            let r = if i % 2 == 0 { Request::Ref { key: Id([i; 32]) } } else { Request::Set { value: vec![i; 300].into() } };
            let mut text = Vec::new();
            encode_request(&r, &mut text);
            stream.extend_from_slice(&(text.len() as u32).to_be_bytes());
            stream.extend_from_slice(&text);
            reqs.push(r);
        }
        (stream, reqs)
    }

    /// Frames split at every possible point come out whole and in order, and the partial
    /// frame buffer is empty afterwards.
    #[test]
    fn frames_reassemble_across_any_split() {
        let (stream, reqs) = frames(3);
        for cut in 0..=stream.len() {
            let (mut c, _l) = inbound();
            let mut ev = Vec::new();
            c.feed_plain(&stream[..cut], &mut ev).unwrap();
            c.feed_plain(&stream[cut..], &mut ev).unwrap();
            let got: Vec<&Request> = ev
                .iter()
                .map(|e| match e {
                    NetEvent::Request { request, conn: 9, .. } => request,
                    other => panic!("{:?}", other),
                })
                .collect();
            assert_eq!(got, reqs.iter().collect::<Vec<_>>(), "cut at {cut}");
            assert!(c.part.is_none(), "cut at {cut}");
            assert_eq!(c.unanswered, 3);
        }
        // Byte by byte.
        let (mut c, _l) = inbound();
        let mut ev = Vec::new();
        for b in &stream {
            c.feed_plain(std::slice::from_ref(b), &mut ev).unwrap();
        }
        assert_eq!(ev.len(), 3);
    }

    /// A fresh Noise session (NN: no static keys needed here): the sender's records
    /// carrying `plain` in pieces of 200 bytes, and the receiver's transport state.
    fn sealed(plain: &[u8]) -> (Vec<u8>, TransportState) {
        let params: snow::params::NoiseParams = "Noise_NN_25519_ChaChaPoly_SHA256".parse().unwrap();
        let mut i = snow::Builder::new(params.clone()).build_initiator().unwrap();
        let mut r = snow::Builder::new(params).build_responder().unwrap();
        let (mut buf, mut out) = ([0u8; 256], [0u8; 256]);
        let n = i.write_message(&[], &mut buf).unwrap();
        r.read_message(&buf[..n], &mut out).unwrap();
        let n = r.write_message(&[], &mut buf).unwrap();
        i.read_message(&buf[..n], &mut out).unwrap();
        let mut send = i.into_transport_mode().unwrap();
        let mut wire = Vec::new();
        for chunk in plain.chunks(200) {
            let mut rec = vec![0u8; 2 + chunk.len() + 16];
            let n = send.write_message(chunk, &mut rec[2..]).unwrap();
            rec[..2].copy_from_slice(&(n as u16).to_be_bytes());
            wire.extend_from_slice(&rec[..2 + n]);
        }
        (wire, r.into_transport_mode().unwrap())
    }

    /// Records split at every possible point (the frames cut across records too) are
    /// decrypted and decoded whole and in order; afterwards the connection holds no
    /// partial buffer, and the loop no scratch set once it has handed it back.
    #[test]
    fn records_reassemble_across_any_split() {
        let (plain, reqs) = frames(3);
        let len = sealed(&plain).0.len();
        for cut in 0..=len {
            let (wire, ts) = sealed(&plain);
            let (mut c, _l) = inbound();
            c.open(ts);
            let mut sh = Shared::new([1; 32]);
            let mut ev = Vec::new();
            c.on_bytes(&wire[..cut], &mut sh, &mut ev).unwrap();
            c.on_bytes(&wire[cut..], &mut sh, &mut ev).unwrap();
            let got: Vec<&Request> = ev
                .iter()
                .map(|e| match e {
                    NetEvent::Request { request, .. } => request,
                    other => panic!("{:?}", other),
                })
                .collect();
            assert_eq!(got, reqs.iter().collect::<Vec<_>>(), "cut at {cut}");
            assert!(c.part.is_none(), "cut at {cut}");
            assert!(sh.holds_bufs());
            sh.release();
            assert!(!sh.holds_bufs());
        }
    }

    /// A header declaring more than 1 MiB is refused as soon as its 4 bytes are in, before
    /// any body is buffered, even when the header arrives split.
    #[test]
    fn oversized_frame_refused_at_the_header() {
        let header = ((MAX_MESSAGE + 1) as u32).to_be_bytes();
        let (mut c, _l) = inbound();
        let mut ev = Vec::new();
        c.feed_plain(&header[..2], &mut ev).unwrap();
        assert!(c.feed_plain(&header[2..], &mut ev).is_err());
        assert!(c.buffered() < 1024);
        let (mut c, _l) = inbound();
        assert!(c.feed_plain(&header, &mut ev).is_err());
        // Exactly 1 MiB is allowed (the body is then awaited).
        let (mut c, _l) = inbound();
        c.feed_plain(&(MAX_MESSAGE as u32).to_be_bytes(), &mut ev).unwrap();
        assert!(ev.is_empty());
    }

    /// A request past the in-flight bound, or garbage, is an error for this connection.
    #[test]
    fn too_many_unanswered_or_malformed() {
        let (stream, _) = frames(1);
        let (mut c, _l) = inbound();
        let mut ev = Vec::new();
        for _ in 0..MAX_IN_FLIGHT_PER_CONNECTION {
            c.feed_plain(&stream, &mut ev).unwrap();
        }
        assert!(c.feed_plain(&stream, &mut ev).is_err());
        assert_eq!(ev.len(), MAX_IN_FLIGHT_PER_CONNECTION);
        let (mut c, _l) = inbound();
        assert!(c.feed_plain(b"\0\0\0\x03#t)", &mut ev).is_err());
    }

    /// Record headers longer than the maximum are refused before the body arrives.
    #[test]
    fn record_length_bounded() {
        assert_eq!(record_len(&(MAX_RECORD as u16).to_be_bytes()).unwrap(), MAX_RECORD);
        assert!(record_len(&((MAX_RECORD + 1) as u16).to_be_bytes()).is_err());
    }
}
