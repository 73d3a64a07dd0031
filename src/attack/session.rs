//! An open Noise session over a blocking socket, written from PROTOCOL.md §2-§3 alone: records
//! (u16 big-endian length, at most 16,512 bytes), XX with its prologue, transport messages of
//! at most 16 KiB of plaintext, and frames (u32 big-endian length, at most 1 MiB, then datum
//! text) in the plaintext stream. Both sides of the hostile peer use it: the client dials with
//! it, the Sybil listener answers with it.

use crate::consts::MAX_MESSAGE;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest record body (PROTOCOL.md §3).
pub const MAX_RECORD: usize = 16 * 1024 + 128;
/// Largest plaintext of one transport message.
pub const MAX_CHUNK: usize = 16 * 1024;
/// Bytes of a frame's length prefix.
pub const FRAME_HEADER: usize = 4;
/// Pattern byte of XX, in front of the dialer's first record.
pub(crate) const TAG_XX: u8 = 1;
/// Pattern byte of IK: honest peers dial with it once they know a peer's key.
pub(crate) const TAG_IK: u8 = 2;
const PROLOGUE: &[u8; 16] = b"libpeer noise v1";

/// A handshake state for the pattern `tag` names, dialer (`initiator`) or acceptor, with the
/// protocol's prologue (which binds the pattern byte).
pub(crate) fn handshake(tag: u8, secret: &[u8; 32], initiator: bool) -> io::Result<snow::HandshakeState> {
    let params = match tag {
        TAG_XX => "Noise_XX_25519_ChaChaPoly_SHA256",
        TAG_IK => "Noise_IK_25519_ChaChaPoly_SHA256",
        _ => return Err(invalid("unknown handshake pattern")),
    };
    let mut prologue = [0u8; 17];
    prologue[..16].copy_from_slice(PROLOGUE);
    prologue[16] = tag;
    let b = snow::Builder::new(params.parse().map_err(noise)?).local_private_key(secret).prologue(&prologue);
    if initiator { b.build_initiator() } else { b.build_responder() }.map_err(noise)
}

/// A Noise failure as an I/O error: either way the session is unusable.
pub(crate) fn noise(e: snow::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("noise: {e}"))
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The X25519 public key of `secret`.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

/// Records over a blocking socket. Received bytes of an incomplete record are kept, so a read
/// that times out midway loses nothing.
pub(crate) struct Records {
    pub stream: TcpStream,
    raw: Vec<u8>,
}

impl Records {
    pub fn new(stream: TcpStream) -> Records {
        Records { stream, raw: Vec::new() }
    }

    /// The next record's body. A socket timeout is `WouldBlock` or `TimedOut`; a close is
    /// `UnexpectedEof`; a length over the maximum is `InvalidData`.
    pub fn read(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 2 + MAX_RECORD];
        loop {
            if self.raw.len() >= 2 {
                let len = u16::from_be_bytes([self.raw[0], self.raw[1]]) as usize;
                if len > MAX_RECORD {
                    return Err(invalid("record longer than the maximum"));
                }
                if self.raw.len() >= 2 + len {
                    let body = self.raw[2..2 + len].to_vec();
                    self.raw.drain(..2 + len);
                    return Ok(body);
                }
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// Append one record holding `body` to `out`.
    pub fn put(out: &mut Vec<u8>, body: &[u8]) {
        debug_assert!(body.len() <= MAX_RECORD);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }

    pub fn write(&mut self, body: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(2 + body.len());
        Records::put(&mut out, body);
        self.stream.write_all(&out)
    }
}

/// An open session: transport messages both ways, and the plaintext stream cut into frames.
///
/// Output the socket did not take within the write timeout stays queued here, whole records
/// and all, and goes first on the next send or `flush`: a timed-out write never leaves the
/// stream out of step, so an attacker can keep a connection whose peer stopped reading.
pub struct Session {
    records: Records,
    transport: snow::TransportState,
    remote_static: [u8; 32],
    /// Received plaintext not yet taken as a frame.
    plain: Vec<u8>,
    /// Records not yet written to the socket.
    out: Vec<u8>,
}

impl Session {
    /// A finished handshake on `records`; `plain`: stream bytes that rode in it.
    pub(crate) fn open(records: Records, hs: snow::HandshakeState, plain: &[u8]) -> io::Result<Session> {
        let remote_static = hs
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| invalid("the handshake gave no remote static key"))?;
        let transport = hs.into_transport_mode().map_err(noise)?;
        Ok(Session { records, transport, remote_static, plain: plain.to_vec(), out: Vec::new() })
    }

    /// The static key the other side proved.
    pub fn remote_static(&self) -> [u8; 32] {
        self.remote_static
    }

    pub fn stream(&self) -> &TcpStream {
        &self.records.stream
    }

    /// Socket timeouts for reads and writes (None: block).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        self.records.stream.set_read_timeout(read)?;
        self.records.stream.set_write_timeout(write)
    }

    /// Encrypt `data` as stream bytes, cut into transport messages of at most 16 KiB, and
    /// `flush`. Need not end on a frame boundary: a partial frame is just its first bytes.
    pub fn send_plain(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.reserve(data.len() + data.len() / MAX_CHUNK * 18 + 18);
        let mut msg = [0u8; MAX_RECORD];
        for chunk in data.chunks(MAX_CHUNK) {
            let n = self.transport.write_message(chunk, &mut msg).map_err(noise)?;
            Records::put(&mut self.out, &msg[..n]);
        }
        self.flush()
    }

    /// Write queued output until none is left or the write timeout passes (`WouldBlock` or
    /// `TimedOut`; what was not written stays queued).
    pub fn flush(&mut self) -> io::Result<()> {
        let mut done = 0;
        let r = loop {
            if done == self.out.len() {
                break Ok(());
            }
            match self.records.stream.write(&self.out[done..]) {
                Ok(0) => break Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed for writing")),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.out.drain(..done);
        r
    }

    /// Bytes queued for the socket.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Send `bodies` as frames, in one write. A body may be anything (malformed datums);
    /// one over 1 MiB is sent anyway, with its true length.
    pub fn send_frames<B: AsRef<[u8]>>(&mut self, bodies: &[B]) -> io::Result<()> {
        let mut plain = Vec::new();
        for b in bodies {
            let b = b.as_ref();
            plain.extend_from_slice(&(b.len() as u32).to_be_bytes());
            plain.extend_from_slice(b);
        }
        self.send_plain(&plain)
    }

    /// Bytes on the socket as they are, outside any record or encryption (after what is
    /// queued).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(bytes);
        self.flush()
    }

    /// The next frame's body (a declared length over 1 MiB is `InvalidData`).
    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut msg = [0u8; MAX_RECORD];
        loop {
            if self.plain.len() >= FRAME_HEADER {
                let len = u32::from_be_bytes([self.plain[0], self.plain[1], self.plain[2], self.plain[3]]) as usize;
                if len > MAX_MESSAGE {
                    return Err(invalid("frame longer than the maximum"));
                }
                if self.plain.len() >= FRAME_HEADER + len {
                    let body = self.plain[FRAME_HEADER..FRAME_HEADER + len].to_vec();
                    self.plain.drain(..FRAME_HEADER + len);
                    return Ok(body);
                }
            }
            let rec = self.records.read()?;
            let n = self.transport.read_message(&rec, &mut msg).map_err(noise)?;
            self.plain.extend_from_slice(&msg[..n]);
        }
    }

    /// The socket, to close it as the caller likes.
    pub fn into_stream(self) -> TcpStream {
        self.records.stream
    }
}
