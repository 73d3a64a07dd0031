//! `Hostile`: a blocking client that dials a peer as an outsider would (PROTOCOL.md §3: XX,
//! the dialer's side) from a source address of its choice, then sends what it likes: well-formed
//! requests, malformed frame bodies, partial frames inside valid records, or raw bytes.

use super::session::{self, noise, public_key, Records, Session, MAX_RECORD, TAG_XX};
use super::socket;
use crate::wire::{decode_reply, encode_request, Reply, Request};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Connect, handshake, read and write timeouts unless told otherwise: the protocol's request
/// timeout, past which an honest peer would have given up too.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A dialed, authenticated connection to one peer. A send that times out (the peer stopped
/// reading) returns `WouldBlock` or `TimedOut` and keeps the rest queued, whole: the stream
/// stays in step, and the next send or `flush` continues it.
pub struct Hostile {
    session: Session,
    from_ip: IpAddr,
    static_public: [u8; 32],
}

impl Hostile {
    /// Dial `to` from `from_ip` (any port; None: the system's choice) with the Noise static key
    /// `static_secret`, and complete XX. Reads and writes then time out after `DEFAULT_TIMEOUT`.
    pub fn connect(to: SocketAddr, from_ip: Option<IpAddr>, static_secret: [u8; 32]) -> io::Result<Hostile> {
        Hostile::connect_timeout(to, from_ip, static_secret, DEFAULT_TIMEOUT)
    }

    /// As `connect`, every step (and later reads and writes) bounded by `timeout`.
    pub fn connect_timeout(
        to: SocketAddr,
        from_ip: Option<IpAddr>,
        static_secret: [u8; 32],
        timeout: Duration,
    ) -> io::Result<Hostile> {
        let stream = match from_ip {
            Some(ip) => socket::connect_from(ip, to, timeout)?,
            None => TcpStream::connect_timeout(&to, timeout)?,
        };
        let from_ip = stream.local_addr()?.ip();
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let session = handshake(Records::new(stream), &static_secret)?;
        Ok(Hostile { session, from_ip, static_public: public_key(&static_secret) })
    }

    /// Send one request as a frame.
    pub fn send_request(&mut self, r: &Request) -> io::Result<()> {
        self.send_requests(std::slice::from_ref(r))
    }

    /// Send several requests pipelined, in one write.
    pub fn send_requests(&mut self, rs: &[Request]) -> io::Result<()> {
        let bodies: Vec<Vec<u8>> = rs
            .iter()
            .map(|r| {
                let mut b = Vec::new();
                encode_request(r, &mut b);
                b
            })
            .collect();
        self.session.send_frames(&bodies)
    }

    /// Send `body` as one frame, whatever it holds (malformed datums, oversized text).
    pub fn send_frame_bytes(&mut self, body: &[u8]) -> io::Result<()> {
        self.session.send_frames(&[body])
    }

    /// Send stream bytes, encrypted in valid records but not necessarily whole frames: a
    /// frame header announcing 1 MiB then part of its body is `send_plain` of those bytes.
    pub fn send_plain(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.session.send_plain(bytes)
    }

    /// Write queued output (what a timed-out send left) until done or the write timeout.
    pub fn flush(&mut self) -> io::Result<()> {
        self.session.flush()
    }

    /// Bytes of earlier sends not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.session.pending()
    }

    /// Bytes straight on the socket, outside records and encryption.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.session.send_raw(bytes)
    }

    /// The next reply (in request order), waiting at most the read timeout: `WouldBlock` or
    /// `TimedOut` then. A reply that does not decode is `InvalidData`.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let body = self.session.read_frame()?;
        decode_reply(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("reply: {e}")))
    }

    /// Send `r` and wait for its reply.
    pub fn request(&mut self, r: &Request) -> io::Result<Reply> {
        self.send_request(r)?;
        self.read_reply()
    }

    /// Non-blocking: sends queue what the socket does not take at once, and reads without a
    /// reply waiting return `WouldBlock`.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.session.stream().set_nonblocking(on)
    }

    /// Read and write timeouts (None: block for ever).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        self.session.set_timeouts(read, write)
    }

    /// The static key the peer proved in the handshake.
    pub fn remote_static(&self) -> [u8; 32] {
        self.session.remote_static()
    }

    /// Our own static public key, as the peer saw it.
    pub fn static_public(&self) -> [u8; 32] {
        self.static_public
    }

    /// The source address the connection was made from.
    pub fn from_ip(&self) -> IpAddr {
        self.from_ip
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.session.stream().local_addr()
    }

    /// Close with a reset (no FIN, no TIME_WAIT): for churn, where ports would run out.
    pub fn reset(self) {
        socket::reset(self.session.into_stream());
    }
}

/// XX as the dialer: `-> e` (after the pattern byte), `<- e, ee, s, es`, `-> s, se` with an
/// empty payload (the dialer may carry requests there; we send them afterwards).
fn handshake(mut records: Records, secret: &[u8; 32]) -> io::Result<Session> {
    let mut hs = session::handshake(TAG_XX, secret, true)?;
    let mut buf = [0u8; MAX_RECORD];
    buf[0] = TAG_XX;
    let n = hs.write_message(&[], &mut buf[1..]).map_err(noise)?;
    records.write(&buf[..1 + n])?;
    let second = records.read()?;
    let mut payload = [0u8; MAX_RECORD];
    if hs.read_message(&second, &mut payload).map_err(noise)? != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "payload in handshake message 2"));
    }
    let n = hs.write_message(&[], &mut buf).map_err(noise)?;
    records.write(&buf[..n])?;
    Session::open(records, hs, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Id, Node};
    use std::net::Ipv4Addr;

    /// A hostile client from its own address introduces itself and asks for contacts: the
    /// peer sees it at that address, proves its own key, and answers `peers` with the
    /// other peer it knows.
    #[test]
    fn iam_and_peers_against_a_real_node() {
        let ip = |c: u8, d: u8| IpAddr::V4(Ipv4Addr::new(127, 0, c, d));
        let a = Node::new(Id([0x11; 32]), ip(1, 1), 0, 5).unwrap();
        let b = Node::new(Id([0x22; 32]), ip(1, 2), 0, 5).unwrap();
        b.connect(a.addr().ip(), a.port()).unwrap();
        // `a` admits `b` once it has proved b's address (its own `iam` to it, answered), which
        // may end after b's `connect` returned: wait for it, bounded.
        for _ in 0..500 {
            if a.stats().unwrap().contacts > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(a.stats().unwrap().contacts, 1, "a proved b's address within 5 s");
        let mut h = Hostile::connect(a.addr(), Some(ip(9, 1)), [7; 32]).unwrap();
        assert_eq!(h.from_ip(), ip(9, 1));
        let me = Id([0x33; 32]);
        match h.request(&Request::Iam { uid: me, port: Some(1) }).unwrap() {
            Reply::Welcome { ip: seen, port, uid } => {
                assert_eq!((seen, port, uid), (ip(9, 1), h.local_addr().unwrap().port(), a.uid()));
            }
            r => panic!("iam answered with {r:?}"),
        }
        // Pipelined: two requests in one write, the replies in order.
        h.send_requests(&[Request::Peers { key: b.uid() }, Request::Ref { key: Id([0x44; 32]) }]).unwrap();
        for _ in 0..2 {
            match h.read_reply().unwrap() {
                Reply::Peers(cs) => assert!(cs.iter().any(|c| c.id == b.uid()), "{cs:?}"),
                r => panic!("peers answered with {r:?}"),
            }
        }
        assert_ne!(h.remote_static(), [0; 32]);
        assert_eq!(h.static_public(), public_key(&[7; 32]));
        // Malformed input closes the connection: the next read sees the close.
        h.send_frame_bytes(b"#(no-such-request)").unwrap();
        assert!(h.read_reply().is_err());
    }
}
