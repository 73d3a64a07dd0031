//! Hooks for the fuzz targets (fuzz/, docs/FUZZING.md; feature `sim` only): what an accepting
//! connection does with untrusted bytes, run on a real `Conn` whose socket is one end of a
//! local socket pair, so the targets exercise the record splitting, the responder's
//! handshake, the transport phase and the frame decoding exactly as `Net` runs them, without
//! TCP (no ports, no TIME_WAIT, thousands of connections a second).
//!
//! Each hook checks the properties a run must keep and panics when one breaks: the panic is
//! the fuzzer's finding. The properties: no panic anywhere; a connection's buffers stay
//! within one record plus twice what arrived; every request it hands over is one the codec
//! writes back identically; and in the transport phase, the requests handed over and whether
//! the connection fails are exactly those an independent reading of the plaintext stream
//! gives.
#![cfg(feature = "sim")]

use super::conn::{Conn, LARGE_REPLY, SMALL_REPLY};
use super::input::large_reply;
use super::event::{ConnError, NetEvent};
use super::noise::{Action, Dial, Finished, Handshake};
use super::record::{self, HEADER_LEN, MAX_CHUNK, MAX_RECORD};
use super::scratch::{Lease, Scratch};
use crate::consts::{MAX_IN_FLIGHT_PER_CONNECTION, MAX_MESSAGE, OUTPUT_PAUSE_BYTES};
use crate::wire::{decode_request, encode_request, Request};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The accepting peer's static secret, fixed so that recorded IK first messages (seeds)
/// stay valid.
pub const RESPONDER_SECRET: [u8; 32] = [0x42; 32];
/// The dialer's static secret, in the transport hook and the seeds.
pub const INITIATOR_SECRET: [u8; 32] = [0x17; 32];

/// Where the accepted connection claims to come from (never used to send).
const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

/// Slack over one record and twice the bytes delivered, for the boxes a connection holds.
const SLACK: usize = 1024;

/// The Noise public key of a static secret.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

/// The size of the pieces a selector byte asks the stream to arrive in: `s * s` bytes (1 to
/// 65,025, so records and frames are cut anywhere), or all at once for 0.
fn piece_size(s: u8) -> usize {
    if s == 0 {
        usize::MAX
    } else {
        s as usize * s as usize
    }
}

/// An accepted connection over a socket pair, and the dialer's end.
struct Wire {
    conn: Conn,
    ours: UnixStream,
    lease: Lease,
    events: Vec<NetEvent>,
    /// Bytes delivered to the connection so far.
    delivered: usize,
}

impl Wire {
    fn new() -> Wire {
        let (theirs, ours) = UnixStream::pair().expect("socketpair");
        theirs.set_nonblocking(true).expect("nonblocking");
        ours.set_nonblocking(true).expect("nonblocking");
        // SAFETY: the descriptor is an open stream socket whose ownership moves to the new
        // stream; the connection only reads, writes and closes it, which a Unix stream socket
        // does as a TCP one would.
        let sock = unsafe { std::net::TcpStream::from_raw_fd(theirs.into_raw_fd()) };
        let now = Instant::now();
        let deadline = now + Duration::from_secs(5);
        let conn = Conn::accepted(1, mio::net::TcpStream::from_std(sock), PEER, deadline, now);
        Wire { conn, ours, lease: Lease::default(), events: Vec::new(), delivered: 0 }
    }

    /// Send `stream` in pieces of `piece` bytes, the connection reading after each as its
    /// loop would on a readable event. Stops at the connection's first error.
    fn deliver(&mut self, stream: &[u8], piece: usize) -> Result<(), ConnError> {
        for part in stream.chunks(piece.clamp(1, stream.len().max(1))) {
            let mut off = 0;
            while off < part.len() {
                match self.ours.write(&part[off..]) {
                    Ok(n) => {
                        off += n;
                        self.delivered += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("writing to the socket pair: {e}"),
                }
                let bufs: &mut Scratch = self.lease.get();
                self.conn.read_all(&RESPONDER_SECRET, bufs, &mut self.events)?;
                self.check_buffers();
            }
        }
        Ok(())
    }

    /// A connection holds at most one record and twice the plaintext that arrived (a partial
    /// frame grows with its bytes, not with its announced length).
    fn check_buffers(&self) {
        let bound = SLACK + HEADER_LEN + MAX_RECORD + 2 * self.delivered.max(512);
        assert!(
            self.conn.buffered() <= bound,
            "connection holds {} bytes after {} delivered",
            self.conn.buffered(),
            self.delivered
        );
    }

    /// One whole record the connection wrote (its handshake message 2).
    fn read_record(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN + MAX_RECORD];
        let mut have = 0;
        loop {
            if have >= HEADER_LEN {
                let want = HEADER_LEN + record::record_len(&buf).expect("responder record length");
                if have >= want {
                    buf.truncate(want);
                    return buf;
                }
            }
            match self.ours.read(&mut buf[have..]) {
                Ok(0) => panic!("the responder closed without answering"),
                Ok(n) => have += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => panic!("the responder did not answer"),
                Err(e) => panic!("reading the socket pair: {e}"),
            }
        }
    }

    /// The requests handed over so far, each checked to be one the codec writes back as is.
    fn requests(&self) -> Vec<&Request> {
        self.events
            .iter()
            .map(|e| match e {
                NetEvent::Request { conn: 1, from, request, .. } => {
                    assert_eq!(*from, PEER);
                    assert!(self.conn.is_open(), "a request from a connection whose handshake did not complete");
                    let mut text = Vec::new();
                    encode_request(request, &mut text);
                    assert_eq!(decode_request(&text).as_ref(), Ok(request), "{}", String::from_utf8_lossy(&text));
                    request
                }
                other => panic!("an accepting connection produced {other:?}"),
            })
            .collect()
    }
}

/// An accepting connection fed `data`: its first byte sets the size of the pieces the rest
/// arrives in (`piece_size`), the rest is what a dialer sends, from the first record on
/// (pattern byte, handshake, transport records). Returns how many requests the connection
/// handed over; panics when a property breaks.
pub fn accept(data: &[u8]) -> usize {
    let Some((&cut, stream)) = data.split_first() else {
        return 0;
    };
    let mut w = Wire::new();
    let _ = w.deliver(stream, piece_size(cut));
    w.requests().len()
}

/// An accepting connection and a dialer completing the handshake in-process, then `data` as
/// the dialer's plaintext stream (frames of requests, or anything). `data[0]` sets the size
/// of the pieces the ciphertext arrives in (`piece_size`); of `data[1]`, bit 0 picks XX (1)
/// or IK (0), bit 1 lets the stream's head ride in the handshake (IK message 1, XX message
/// 3), and bits 2-7 (`s`) the plaintext per transport record (`4 s^2` bytes, or 16 KiB for
/// 0). The requests handed over, and whether the connection failed, must be what `expected`
/// reads in the plaintext. Panics when a property breaks; returns whether the connection
/// paused (nobody reads its replies here).
pub fn transport(data: &[u8]) -> bool {
    let [cut, mode, plain @ ..] = data else {
        return false;
    };
    let (piece, xx, ride) = (piece_size(*cut), mode & 1 != 0, mode & 2 != 0);
    let s = (mode >> 2) as usize;
    let chunk = if s == 0 { MAX_CHUNK } else { (4 * s * s).min(MAX_CHUNK) };
    let mut w = Wire::new();
    let r = open_and_send(&mut w, plain, piece, xx, ride, chunk);
    let (want, fails) = expected(plain);
    let got = w.requests();
    if w.conn.paused {
        // Nobody reads the replies here: the connection paused at the request whose reply
        // reservation reached the threshold, and what follows waits unread.
        let reserve = |rs: &[&Request]| rs.iter().map(|r| if large_reply(r) { LARGE_REPLY } else { SMALL_REPLY }).sum::<usize>();
        assert!(!got.is_empty() && reserve(&got) >= OUTPUT_PAUSE_BYTES, "paused below the threshold");
        assert!(reserve(&got[..got.len() - 1]) < OUTPUT_PAUSE_BYTES, "paused late");
        assert_eq!(got, want.iter().take(got.len()).collect::<Vec<_>>(), "requests handed over before the pause");
        return true;
    }
    assert_eq!(got, want.iter().collect::<Vec<_>>(), "requests handed over");
    assert_eq!(r.is_err(), fails, "connection result {:?}", r.err());
    for e in &w.events {
        if let NetEvent::Request { remote_static, .. } = e {
            assert_eq!(*remote_static, public_key(&INITIATOR_SECRET));
        }
    }
    false
}

/// The handshake as a dialer runs it against `w`, then `plain` in transport records of
/// `chunk` bytes. Errors are the connection's (the dialer's side must not fail).
fn open_and_send(w: &mut Wire, plain: &[u8], piece: usize, xx: bool, ride: bool, chunk: usize) -> Result<(), ConnError> {
    let expected = (!xx).then(|| public_key(&RESPONDER_SECRET));
    let offered = if ride { plain } else { &[] };
    let Dial { handshake: mut dialer, record: first, carried } =
        Handshake::dial(&INITIATOR_SECRET, expected, offered).expect("dialer's first message");
    w.deliver(&first, piece)?;
    let second = w.read_record();
    let mut buf = vec![0u8; HEADER_LEN + MAX_RECORD];
    let confirmed = match dialer.on_record(&second[HEADER_LEN..], &INITIATOR_SECRET, &mut buf) {
        Ok(Action::Confirmed(c)) => c,
        Ok(_) => panic!("a dialer's message 2 must confirm the responder"),
        Err(e) => panic!("the responder's message 2 was refused: {e}"),
    };
    assert_eq!(confirmed.remote_static(), public_key(&RESPONDER_SECRET));
    let rest = if ride { &plain[carried..] } else { &[] };
    let Finished { session, record: third, carried: more } = confirmed.finish(rest, &mut buf).expect("finish");
    let mut out = third.to_vec();
    let mut ts = session.transport;
    let sent = if ride { carried + more } else { 0 };
    let mut crypt = vec![0u8; HEADER_LEN + MAX_RECORD];
    for c in plain[sent..].chunks(chunk) {
        let n = ts.write_message(c, &mut crypt[HEADER_LEN..]).expect("encrypt");
        out.extend_from_slice(record::finish(&mut crypt, n));
    }
    w.deliver(&out, piece)
}

/// What an accepting connection must make of a plaintext stream, read without its frame
/// decoder: the requests of the whole frames, in order, and whether it must fail (a frame
/// announcing more than `MAX_MESSAGE`, a body that is not a request, a request past the
/// in-flight bound; none of them is answered here).
fn expected(plain: &[u8]) -> (Vec<Request>, bool) {
    let mut requests = Vec::new();
    let mut rest = plain;
    while let Some(header) = rest.first_chunk::<4>() {
        let len = u32::from_be_bytes(*header) as usize;
        if len > MAX_MESSAGE {
            return (requests, true);
        }
        let Some(body) = rest.get(4..4 + len) else {
            break;
        };
        if requests.len() == MAX_IN_FLIGHT_PER_CONNECTION {
            return (requests, true);
        }
        match decode_request(body) {
            Ok(r) => requests.push(r),
            Err(_) => return (requests, true),
        }
        rest = &rest[4 + len..];
    }
    (requests, false)
}

/// Seeds for `accept`: real first records of dialers (XX message 1; IK message 1 to
/// `RESPONDER_SECRET` carrying `frames`, which then opens the connection; IK to another key;
/// an XX start followed by a forged message 3), each whole and cut in small pieces.
pub fn accept_seeds(frames: &[u8]) -> Vec<Vec<u8>> {
    let other = public_key(&[0x33; 32]);
    let dial = |expected, plain: &[u8]| Handshake::dial(&INITIATOR_SECRET, expected, plain).expect("dial").record;
    let ik = dial(Some(public_key(&RESPONDER_SECRET)), frames);
    let xx = dial(None, &[]);
    let mut xx_forged = xx.clone();
    xx_forged.extend_from_slice(&[0, 64]);
    xx_forged.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    let streams = [ik, xx, dial(Some(other), frames), xx_forged];
    let mut seeds = Vec::new();
    for s in &streams {
        for cut in [0u8, 3] {
            let mut seed = vec![cut];
            seed.extend_from_slice(s);
            seeds.push(seed);
        }
    }
    seeds
}
