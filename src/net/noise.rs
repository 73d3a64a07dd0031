//! The Noise handshakes, XX and IK (PROTOCOL.md §3), as a state machine that returns
//! actions: it is handed each received handshake record and says what the connection must
//! do (send a record, open with these transport keys, feed the plaintext that rode along to
//! the frame decoder) without touching the connection, so it can be run in memory.

use super::event::ConnError;
use super::record::{self, HEADER_LEN, MAX_RECORD};
use snow::{HandshakeState, TransportState};

/// Pattern byte in front of the dialer's first record.
const TAG_XX: u8 = 1;
const TAG_IK: u8 = 2;

const PARAMS_XX: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
const PARAMS_IK: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
/// Both sides mix this and the pattern byte into the handshake hash, so a pattern byte
/// altered in transit makes the handshake fail instead of silently downgrading.
const PROLOGUE: &[u8; 16] = b"libpeer noise v1";

/// IK message 1 carries e (32), encrypted s (48) and the payload's tag (16), and its record
/// also holds the pattern byte.
pub(crate) const IK1_PAYLOAD: usize = MAX_RECORD - 1 - 96;
/// XX message 3 carries encrypted s (48) and the payload's tag (16).
const XX3_PAYLOAD: usize = MAX_RECORD - 64;
/// Message 2 is 96 bytes in XX (e, encrypted s, empty payload's tag), 48 in IK.
const MAX_MESSAGE_2: usize = 128;

/// A completed handshake: the transport keys and the static key it authenticated.
pub(super) struct Session {
    pub transport: TransportState,
    pub remote_static: [u8; 32],
}

/// Message 2 as a record, length prefix included: small enough for the stack.
pub(super) struct Reply {
    buf: [u8; HEADER_LEN + MAX_MESSAGE_2],
    len: usize,
}

impl Reply {
    /// Write message 2 (empty payload) of `hs`.
    fn write(hs: &mut HandshakeState) -> Result<Reply, ConnError> {
        let mut buf = [0u8; HEADER_LEN + MAX_MESSAGE_2];
        let n = hs.write_message(&[], &mut buf[HEADER_LEN..])?;
        let len = record::finish(&mut buf, n).len();
        Ok(Reply { buf, len })
    }

    pub fn record(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What the connection does with a handshake record it received.
// Matched as soon as it is returned, once per handshake; boxing the dialer's state to
// even out the variants would cost an allocation per connection.
#[allow(clippy::large_enum_variant)]
pub(super) enum Action<'b> {
    /// Responder, XX: send message 2 and wait for message 3.
    Send(Reply),
    /// Responder, done: send `reply` if any (IK message 2), switch to `session`, then feed
    /// `plain` (the payload of IK message 1 or XX message 3: the dialer's first requests) to
    /// the frame decoder.
    Open { reply: Option<Reply>, session: Session, plain: &'b [u8] },
    /// Dialer: message 2 authenticated the responder. Its key decides which held-back
    /// requests may go, so the caller picks them and finishes with `Confirmed::finish`.
    Confirmed(Confirmed),
}

/// The dialer's handshake after message 2.
pub(super) struct Confirmed {
    hs: HandshakeState,
    remote_static: [u8; 32],
}

/// The dialer's handshake as it finished: XX message 3 as a record (in the caller's buffer,
/// empty for IK) to send before any transport message, and how much of the plaintext it carries.
pub(super) struct Finished<'o> {
    pub session: Session,
    pub record: &'o [u8],
    pub carried: usize,
}

impl Confirmed {
    pub fn remote_static(&self) -> [u8; 32] {
        self.remote_static
    }

    /// Switch to transport mode. XX first writes message 3 into `out` (at least
    /// `2 + MAX_RECORD` bytes), carrying as much of `plain` as fits.
    pub fn finish<'o>(self, plain: &[u8], out: &'o mut [u8]) -> Result<Finished<'o>, ConnError> {
        let Confirmed { mut hs, remote_static } = self;
        let (mut len, mut carried) = (0, 0);
        if !hs.is_handshake_finished() {
            carried = plain.len().min(XX3_PAYLOAD);
            let n = hs.write_message(&plain[..carried], &mut out[HEADER_LEN..])?;
            len = record::finish(out, n).len();
        }
        let session = Session { transport: hs.into_transport_mode()?, remote_static };
        Ok(Finished { session, record: &out[..len], carried })
    }
}

/// A dial's start: the handshake, the first record (length prefix, pattern byte, message 1)
/// and how many bytes of the offered plaintext ride in it.
pub(super) struct Dial {
    pub handshake: Handshake,
    pub record: Vec<u8>,
    pub carried: usize,
}

/// Where a handshake stands: what record it waits for.
pub(super) enum Handshake {
    /// Dialer, before the TCP connect completes: message 1 is written only then, so every
    /// request queued meanwhile can ride in it (`expected`: the key the caller named, if any).
    Connecting { expected: Option<[u8; 32]> },
    /// Responder: the pattern byte and message 1.
    Accepting,
    /// Responder, XX: message 3.
    AwaitingThird(HandshakeState),
    /// Dialer: message 2; `expected` is the key the caller named, if any.
    AwaitingSecond { hs: HandshakeState, expected: Option<[u8; 32]> },
    /// Complete or failed: no record is expected.
    Spent,
}

impl Handshake {
    /// Dialer: IK when the responder's key is `expected` (as much of `plain`, the first
    /// requests, as fits rides in message 1), XX otherwise (nothing rides).
    pub fn dial(secret: &[u8; 32], expected: Option<[u8; 32]>, plain: &[u8]) -> Result<Dial, ConnError> {
        let tag = if expected.is_some() { TAG_IK } else { TAG_XX };
        let mut hs = build(tag, secret, expected.as_ref(), true)?;
        let carried = if tag == TAG_IK { plain.len().min(IK1_PAYLOAD) } else { 0 };
        // Becomes the connection's output buffer as it is (the socket is not connected yet).
        let mut rec = vec![0u8; HEADER_LEN + 1 + 96 + carried];
        let n = hs.write_message(&plain[..carried], &mut rec[HEADER_LEN + 1..])?;
        rec[HEADER_LEN] = tag;
        let len = record::finish(&mut rec, n + 1).len();
        rec.truncate(len);
        Ok(Dial { handshake: Handshake::AwaitingSecond { hs, expected }, record: rec, carried })
    }

    /// Dialer: the key the handshake must authenticate, if the caller named one.
    pub fn expected(&self) -> Option<[u8; 32]> {
        match self {
            Handshake::Connecting { expected } | Handshake::AwaitingSecond { expected, .. } => *expected,
            _ => None,
        }
    }

    /// Take one received record (its body, without the length prefix). `secret` is this
    /// peer's static key (the responder builds its state from it); payloads are decrypted
    /// into `buf` (at least `MAX_RECORD` bytes). After an error, or once complete, the
    /// handshake is `Spent`.
    pub fn on_record<'b>(&mut self, rec: &[u8], secret: &[u8; 32], buf: &'b mut [u8]) -> Result<Action<'b>, ConnError> {
        match std::mem::replace(self, Handshake::Spent) {
            Handshake::Accepting => {
                let (&tag, msg) = rec.split_first().ok_or(ConnError::Protocol("empty first record"))?;
                if tag != TAG_XX && tag != TAG_IK {
                    return Err(ConnError::Protocol("unknown handshake pattern"));
                }
                let mut hs = build(tag, secret, None, false)?;
                let n = hs.read_message(msg, buf)?;
                if tag == TAG_XX && n != 0 {
                    return Err(ConnError::Protocol("payload in XX message 1"));
                }
                let reply = Reply::write(&mut hs)?;
                if tag == TAG_XX {
                    *self = Handshake::AwaitingThird(hs);
                    return Ok(Action::Send(reply));
                }
                let buf: &'b [u8] = buf;
                Ok(Action::Open { reply: Some(reply), session: session(hs)?, plain: &buf[..n] })
            }
            Handshake::AwaitingThird(mut hs) => {
                let n = hs.read_message(rec, buf)?;
                let buf: &'b [u8] = buf;
                Ok(Action::Open { reply: None, session: session(hs)?, plain: &buf[..n] })
            }
            Handshake::AwaitingSecond { mut hs, expected } => {
                let n = hs.read_message(rec, buf)?;
                if n != 0 {
                    return Err(ConnError::Protocol("payload in handshake message 2"));
                }
                let remote_static = remote_key(&hs)?;
                if expected.is_some_and(|k| k != remote_static) {
                    return Err(ConnError::Protocol("responder has another static key"));
                }
                Ok(Action::Confirmed(Confirmed { hs, remote_static }))
            }
            // The responder never speaks first.
            Handshake::Connecting { .. } => Err(ConnError::Protocol("handshake record before message 1")),
            Handshake::Spent => Err(ConnError::Protocol("handshake record after the handshake")),
        }
    }
}

fn build(
    tag: u8,
    secret: &[u8; 32],
    remote: Option<&[u8; 32]>,
    initiator: bool,
) -> Result<HandshakeState, snow::Error> {
    let params = if tag == TAG_IK { PARAMS_IK } else { PARAMS_XX };
    let mut prologue = [0u8; 17];
    prologue[..16].copy_from_slice(PROLOGUE);
    prologue[16] = tag;
    let mut b = snow::Builder::new(params.parse()?).local_private_key(secret).prologue(&prologue);
    if let Some(r) = remote {
        b = b.remote_public_key(r);
    }
    if initiator {
        b.build_initiator()
    } else {
        b.build_responder()
    }
}

fn remote_key(hs: &HandshakeState) -> Result<[u8; 32], ConnError> {
    hs.get_remote_static()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or(ConnError::Protocol("handshake gave no remote static key"))
}

fn session(hs: HandshakeState) -> Result<Session, ConnError> {
    let remote_static = remote_key(&hs)?;
    Ok(Session { transport: hs.into_transport_mode()?, remote_static })
}

/// One whole handshake in memory, both sides, IK when `ik` (else XX), the first request
/// `plain` riding where it rides on the wire: what the simulator's WAN model charges a
/// handshake in CPU is what this takes (peer-bench times it at start-up, with the transport
/// states it returns: dialer's, responder's). None if a step failed.
#[cfg(feature = "sim")]
pub fn in_memory(ik: bool, dialer: &[u8; 32], responder: &[u8; 32], plain: &[u8]) -> Option<(TransportState, TransportState)> {
    let (mut buf, mut out) = (vec![0u8; HEADER_LEN + MAX_RECORD], vec![0u8; HEADER_LEN + MAX_RECORD]);
    let key = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*responder)).to_bytes();
    let Dial { handshake: mut d, record: first, carried } = Handshake::dial(dialer, ik.then_some(key), plain).ok()?;
    let mut r = Handshake::Accepting;
    let (second, mut done) = match r.on_record(&first[HEADER_LEN..], responder, &mut buf).ok()? {
        Action::Send(m2) => (m2.record().to_vec(), None),
        Action::Open { reply: Some(m2), session, .. } => (m2.record().to_vec(), Some(session.transport)),
        _ => return None,
    };
    let Action::Confirmed(c) = d.on_record(&second[HEADER_LEN..], dialer, &mut buf).ok()? else { return None };
    let Finished { session, record: third, .. } = c.finish(&plain[carried..], &mut out).ok()?;
    if !third.is_empty() {
        let third = third.to_vec();
        if let Action::Open { session, .. } = r.on_record(&third[HEADER_LEN..], responder, &mut buf).ok()? {
            done = Some(session.transport);
        }
    }
    Some((session.transport, done?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(secret: &[u8; 32]) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
    }

    fn bufs() -> (Vec<u8>, Vec<u8>) {
        (vec![0u8; HEADER_LEN + MAX_RECORD], vec![0u8; HEADER_LEN + MAX_RECORD])
    }

    /// The body of a record, after checking its length prefix.
    fn body(rec: &[u8]) -> &[u8] {
        assert_eq!(record::record_len(rec).unwrap(), rec.len() - HEADER_LEN);
        &rec[HEADER_LEN..]
    }

    /// The two sessions carry transport messages both ways.
    fn talk(dialer: &mut Session, responder: &mut Session) {
        let (mut c, mut p) = ([0u8; 64], [0u8; 64]);
        let n = dialer.transport.write_message(b"request", &mut c).unwrap();
        let m = responder.transport.read_message(&c[..n], &mut p).unwrap();
        assert_eq!(&p[..m], b"request");
        let n = responder.transport.write_message(b"reply", &mut c).unwrap();
        let m = dialer.transport.read_message(&c[..n], &mut p).unwrap();
        assert_eq!(&p[..m], b"reply");
    }

    /// XX through the state machine: nothing rides in message 1, the requests ride in
    /// message 3, and each side authenticates the other's key.
    #[test]
    fn xx_completes_in_memory() {
        let (a, b) = ([7u8; 32], [9u8; 32]);
        let (mut buf, mut out) = bufs();
        let plain: Vec<u8> = (0..XX3_PAYLOAD + 100).map(|i| i as u8).collect();
        let Dial { handshake: mut dialer, record: first, carried } = Handshake::dial(&a, None, &plain).unwrap();
        assert_eq!((carried, first[HEADER_LEN]), (0, TAG_XX));
        assert_eq!(dialer.expected(), None);
        let mut responder = Handshake::Accepting;
        let second = match responder.on_record(body(&first), &b, &mut buf).unwrap() {
            Action::Send(r) => r.record().to_vec(),
            _ => panic!("XX message 1 must be answered with message 2"),
        };
        assert!(matches!(responder, Handshake::AwaitingThird(_)));
        let confirmed = match dialer.on_record(body(&second), &a, &mut buf).unwrap() {
            Action::Confirmed(c) => c,
            _ => panic!("message 2 must confirm the responder"),
        };
        assert!(matches!(dialer, Handshake::Spent));
        assert_eq!(confirmed.remote_static(), public(&b));
        let Finished { session: mut ds, record: third, carried } = confirmed.finish(&plain, &mut out).unwrap();
        assert_eq!(carried, XX3_PAYLOAD);
        assert_eq!(third.len(), HEADER_LEN + MAX_RECORD);
        let third = third.to_vec();
        match responder.on_record(body(&third), &b, &mut buf).unwrap() {
            Action::Open { reply: None, session: mut rs, plain: got } => {
                assert_eq!(got, &plain[..XX3_PAYLOAD]);
                assert_eq!(rs.remote_static, public(&a));
                assert_eq!(ds.remote_static, public(&b));
                talk(&mut ds, &mut rs);
            }
            _ => panic!("XX message 3 must complete the responder"),
        }
        assert!(matches!(responder, Handshake::Spent));
    }

    /// IK through the state machine: the first requests ride in message 1 (as much as
    /// fits, filling the largest record), message 2 completes both sides.
    #[test]
    fn ik_completes_in_memory() {
        let (a, b) = ([7u8; 32], [9u8; 32]);
        let (mut buf, mut out) = bufs();
        let plain: Vec<u8> = (0..IK1_PAYLOAD + 10).map(|i| (i * 3) as u8).collect();
        let Dial { handshake: mut dialer, record: first, carried } =
            Handshake::dial(&a, Some(public(&b)), &plain).unwrap();
        assert_eq!((carried, first[HEADER_LEN]), (IK1_PAYLOAD, TAG_IK));
        assert_eq!(first.len(), HEADER_LEN + MAX_RECORD);
        assert_eq!(dialer.expected(), Some(public(&b)));
        let mut responder = Handshake::Accepting;
        let (second, mut rs) = match responder.on_record(body(&first), &b, &mut buf).unwrap() {
            Action::Open { reply: Some(r), session, plain: got } => {
                assert_eq!(got, &plain[..IK1_PAYLOAD]);
                assert_eq!(session.remote_static, public(&a));
                (r.record().to_vec(), session)
            }
            _ => panic!("IK message 1 must complete the responder"),
        };
        let confirmed = match dialer.on_record(body(&second), &a, &mut buf).unwrap() {
            Action::Confirmed(c) => c,
            _ => panic!("message 2 must confirm the responder"),
        };
        // IK has no message 3: the rest of the plaintext goes as transport messages.
        let Finished { session: mut ds, record, carried } = confirmed.finish(&plain[IK1_PAYLOAD..], &mut out).unwrap();
        assert_eq!((record.len(), carried), (0, 0));
        assert_eq!(ds.remote_static, public(&b));
        talk(&mut ds, &mut rs);
    }

    /// Naming the wrong key fails: in IK the responder cannot read message 1, and a dialer
    /// whose responder proves another key refuses it.
    #[test]
    fn wrong_expected_key_fails() {
        let (a, b, c) = ([7u8; 32], [9u8; 32], [11u8; 32]);
        let (mut buf, _) = bufs();
        let Dial { record: first, .. } = Handshake::dial(&a, Some(public(&c)), b"req").unwrap();
        let mut responder = Handshake::Accepting;
        assert!(responder.on_record(body(&first), &b, &mut buf).is_err());
        assert!(matches!(responder, Handshake::Spent));
        // An XX dialer that insists on a key (as a held-back request may).
        let hs = build(TAG_XX, &a, None, true).unwrap();
        let mut dialer = Handshake::AwaitingSecond { hs, expected: Some(public(&c)) };
        let mut first = [0u8; 64];
        let n = match &mut dialer {
            Handshake::AwaitingSecond { hs, .. } => hs.write_message(&[], &mut first[1..]).unwrap(),
            _ => unreachable!(),
        };
        first[0] = TAG_XX;
        let mut responder = Handshake::Accepting;
        let second = match responder.on_record(&first[..1 + n], &b, &mut buf).unwrap() {
            Action::Send(r) => r.record().to_vec(),
            _ => panic!("XX message 1 must be answered"),
        };
        assert!(matches!(
            dialer.on_record(body(&second), &a, &mut buf),
            Err(ConnError::Protocol("responder has another static key"))
        ));
    }

    /// Garbage in any state is an error (never a panic) and leaves the handshake spent.
    #[test]
    fn garbage_records_fail() {
        let (a, b) = ([7u8; 32], [9u8; 32]);
        let (mut buf, _) = bufs();
        let junk: Vec<u8> = (0..MAX_RECORD as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 2, 5, 33, 48, 96, 97, 200, 1000, MAX_RECORD] {
            for tag in [0, TAG_XX, TAG_IK, 3, 255] {
                let mut rec = junk[..len].to_vec();
                if let Some(t) = rec.first_mut() {
                    *t = tag;
                }
                let mut responder = Handshake::Accepting;
                // XX message 1 is a bare public key: any 32 bytes after the tag are accepted.
                if !(tag == TAG_XX && len == 33) {
                    assert!(responder.on_record(&rec, &b, &mut buf).is_err(), "tag {tag}, {len} bytes");
                    assert!(matches!(responder, Handshake::Spent));
                }
                let Dial { handshake: mut dialer, .. } = Handshake::dial(&a, None, &[]).unwrap();
                assert!(dialer.on_record(&rec, &a, &mut buf).is_err(), "message 2 of {len} bytes");
                assert!(matches!(dialer, Handshake::Spent));
                assert!(Handshake::Spent.on_record(&rec, &a, &mut buf).is_err());
            }
        }
        // Garbage as XX message 3.
        let Dial { record: first, .. } = Handshake::dial(&a, None, &[]).unwrap();
        let mut responder = Handshake::Accepting;
        responder.on_record(body(&first), &b, &mut buf).unwrap();
        assert!(responder.on_record(&junk[..200], &b, &mut buf).is_err());
        assert!(matches!(responder, Handshake::Spent));
    }

    /// Drive both patterns in memory: the derived public key is the one Noise authenticates,
    /// and the payload sizes the framing relies on are accepted.
    #[test]
    fn patterns_complete_and_authenticate() {
        let (a, b) = ([7u8; 32], [9u8; 32]);
        let mut buf = vec![0u8; MAX_RECORD];
        let mut out = vec![0u8; MAX_RECORD];
        // IK with a maximal message-1 payload.
        let mut i = build(TAG_IK, &a, Some(&public(&b)), true).unwrap();
        let mut r = build(TAG_IK, &b, None, false).unwrap();
        let payload = vec![0x5a; IK1_PAYLOAD];
        let n = i.write_message(&payload, &mut buf).unwrap();
        assert_eq!(n + 1, MAX_RECORD);
        let p = r.read_message(&buf[..n], &mut out).unwrap();
        assert_eq!(&out[..p], &payload[..]);
        assert_eq!(r.get_remote_static().unwrap(), &public(&a));
        let n = r.write_message(&[], &mut buf).unwrap();
        assert!(n <= MAX_MESSAGE_2);
        i.read_message(&buf[..n], &mut out).unwrap();
        assert!(i.is_handshake_finished() && r.is_handshake_finished());
        // XX with a maximal message-3 payload.
        let mut i = build(TAG_XX, &a, None, true).unwrap();
        let mut r = build(TAG_XX, &b, None, false).unwrap();
        let n = i.write_message(&[], &mut buf).unwrap();
        r.read_message(&buf[..n], &mut out).unwrap();
        let n = r.write_message(&[], &mut buf).unwrap();
        assert!(n <= MAX_MESSAGE_2);
        i.read_message(&buf[..n], &mut out).unwrap();
        assert_eq!(i.get_remote_static().unwrap(), &public(&b));
        let payload = vec![0xa5; XX3_PAYLOAD];
        let n = i.write_message(&payload, &mut buf).unwrap();
        assert_eq!(n, MAX_RECORD);
        let p = r.read_message(&buf[..n], &mut out).unwrap();
        assert_eq!(&out[..p], &payload[..]);
        assert_eq!(r.get_remote_static().unwrap(), &public(&a));
    }

    /// A pattern byte changed in transit must break the handshake (it is in the prologue).
    #[test]
    fn prologue_binds_pattern() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let mut buf = vec![0u8; 1024];
        let mut out = vec![0u8; 1024];
        let mut i = build(TAG_XX, &a, None, true).unwrap();
        let mut r = build(TAG_IK, &b, None, false).unwrap();
        let n = i.write_message(&[], &mut buf).unwrap();
        assert!(r.read_message(&buf[..n], &mut out).is_err());
        // Same pattern, prologue differing only in the pattern byte: message 2 fails to verify.
        let mut i = build(TAG_XX, &a, None, true).unwrap();
        let mut r = snow::Builder::new(PARAMS_XX.parse().unwrap())
            .local_private_key(&b)
            .prologue(b"libpeer noise v1\x02")
            .build_responder()
            .unwrap();
        let n = i.write_message(&[], &mut buf).unwrap();
        r.read_message(&buf[..n], &mut out).unwrap();
        let n = r.write_message(&[], &mut buf).unwrap();
        assert!(i.read_message(&buf[..n], &mut out).is_err());
    }
}
