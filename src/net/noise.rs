//! The Noise handshakes (XX and IK) of one connection, driven record by record.
//! The framing they use is described in the module doc of `net`.

use super::conn::{Conn, ConnError, Pending, Phase, Shared};
use super::scratch::Pool;
use super::NetEvent;
use snow::{HandshakeState, TransportState};
use std::time::Instant;

/// Pattern byte in front of the dialer's first record.
pub(super) const TAG_XX: u8 = 1;
pub(super) const TAG_IK: u8 = 2;

const PARAMS_XX: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
const PARAMS_IK: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
/// Both sides mix this and the pattern byte into the handshake hash, so a pattern byte
/// altered in transit makes the handshake fail instead of silently downgrading.
const PROLOGUE: &[u8; 16] = b"libpeer noise v1";

/// Largest record body. Noise allows 65535-byte messages; like TLS we cut the stream into
/// 16 KiB pieces, so the per-`Net` scratch buffers and a connection's partial record stay
/// small, at the cost of one 16-byte tag per 16 KiB.
pub(super) const MAX_RECORD: usize = 16 * 1024 + 128;
/// Plaintext carried by one transport message.
pub(super) const MAX_CHUNK: usize = 16 * 1024;
/// IK message 1 carries e (32), encrypted s (48) and the payload's tag (16), and its record
/// also holds the pattern byte.
const IK1_PAYLOAD: usize = MAX_RECORD - 1 - 96;
/// XX message 3 carries encrypted s (48) and the payload's tag (16).
const XX3_PAYLOAD: usize = MAX_RECORD - 64;

/// What the connection waits for next.
pub(super) enum Step {
    /// Responder: the dialer's first record (pattern byte + message 1).
    First,
    /// Dialer: message 2.
    Second,
    /// Responder (XX only): message 3.
    Third,
}

/// A request that arrived while the handshake was still running: held back because in XX
/// the responder's key, which the request may insist on, is not known yet.
pub(super) struct Queued {
    pub token: u64,
    pub deadline: Instant,
    pub expected: Option<[u8; 32]>,
    pub frame: Vec<u8>,
}

/// Everything only a handshaking connection needs; dropped when it completes.
pub(super) struct Handshake {
    /// None until the responder has seen the pattern byte.
    pub state: Option<HandshakeState>,
    pub step: Step,
    /// Dialer: the static key the handshake must authenticate, if the caller knew it.
    pub expected: Option<[u8; 32]>,
    pub queued: Vec<Queued>,
    /// Dialer, IK: the tail of the first request that did not fit in message 1.
    pub leftover: Vec<u8>,
    /// The handshake fails if not complete by then.
    pub deadline: Instant,
}

/// Spare handshake boxes (~1 KiB each), shared by every peer of the process: a connection
/// needs one only for its first round trip, and a peer thread's allocator cache would
/// otherwise keep several freed ones per thread.
static SPARE: Pool<Handshake> = Pool::new(64);

impl Handshake {
    /// A handshake waiting for `step`, in a spare box when there is one.
    pub(super) fn boxed(step: Step, expected: Option<[u8; 32]>, deadline: Instant) -> Box<Handshake> {
        let h = Handshake { state: None, step, expected, queued: Vec::new(), leftover: Vec::new(), deadline };
        match SPARE.take() {
            Some(mut b) => {
                *b = h;
                b
            }
            None => Box::new(h),
        }
    }

    /// Done with (complete or abandoned): free what it holds and keep the box.
    pub(super) fn recycle(mut self: Box<Self>) {
        self.state = None;
        self.queued = Vec::new();
        self.leftover = Vec::new();
        SPARE.give(self);
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

impl Conn {
    /// Start the dialer's handshake (the connection is in `Step::Second`, with the key it
    /// expects if any) and buffer message 1 (sent once the TCP connect completes). With an
    /// expected key this is IK and `frame` (the first request's frame) rides in message 1;
    /// otherwise XX and `frame` waits for message 3.
    pub(super) fn start_dial(
        &mut self,
        secret: &[u8; 32],
        token: u64,
        deadline: Instant,
        frame: &[u8],
    ) -> Result<(), ConnError> {
        let Phase::Handshake(h) = &mut self.phase else {
            return Err(ConnError::Protocol("dial on an open connection"));
        };
        let expected = h.expected;
        let tag = if expected.is_some() { TAG_IK } else { TAG_XX };
        let mut hs = build(tag, secret, expected.as_ref(), true)?;
        let payload: &[u8] = if tag == TAG_IK {
            let n = frame.len().min(IK1_PAYLOAD);
            h.leftover.extend_from_slice(&frame[n..]);
            self.pending.push_back(Pending { token, deadline });
            &frame[..n]
        } else {
            h.queued.push(Queued { token, deadline, expected, frame: frame.to_vec() });
            &[]
        };
        // Becomes the output buffer: the socket is not connected yet.
        let mut rec = vec![0u8; 3 + 96 + payload.len()];
        let n = hs.write_message(payload, &mut rec[3..])?;
        rec[..2].copy_from_slice(&((n + 1) as u16).to_be_bytes());
        rec[2] = tag;
        rec.truncate(3 + n);
        h.state = Some(hs);
        self.write_later(rec);
        Ok(())
    }

    /// One handshake record arrived.
    pub(super) fn handshake_record(
        &mut self,
        rec: &[u8],
        sh: &mut Shared,
        events: &mut Vec<NetEvent>,
    ) -> Result<(), ConnError> {
        let h = match &mut self.phase {
            Phase::Handshake(h) => h,
            _ => unreachable!("handshake_record on an open connection"),
        };
        match h.step {
            Step::First => {
                let (&tag, msg) = rec.split_first().ok_or(ConnError::Protocol("empty first record"))?;
                if tag != TAG_XX && tag != TAG_IK {
                    return Err(ConnError::Protocol("unknown handshake pattern"));
                }
                let mut hs = build(tag, &sh.secret, None, false)?;
                let crypt = &mut sh.bufs().crypt;
                let n = hs.read_message(msg, crypt)?;
                if tag == TAG_XX && n != 0 {
                    return Err(ConnError::Protocol("payload in XX message 1"));
                }
                let mut out = [0u8; 2 + 128];
                let m = hs.write_message(&[], &mut out[2..])?;
                out[..2].copy_from_slice(&(m as u16).to_be_bytes());
                if tag == TAG_XX {
                    h.state = Some(hs);
                    h.step = Step::Third;
                    self.write_out(&out[..2 + m])?;
                } else {
                    self.remote_static = remote_key(&hs)?;
                    self.open(hs.into_transport_mode()?);
                    self.write_out(&out[..2 + m])?;
                    self.feed_plain(&crypt[..n], events)?;
                }
            }
            Step::Third => {
                let mut hs = h.state.take().ok_or(ConnError::Protocol("handshake state lost"))?;
                let crypt = &mut sh.bufs().crypt;
                let n = hs.read_message(rec, crypt)?;
                self.remote_static = remote_key(&hs)?;
                self.open(hs.into_transport_mode()?);
                self.feed_plain(&crypt[..n], events)?;
            }
            Step::Second => {
                let mut hs = h.state.take().ok_or(ConnError::Protocol("handshake state lost"))?;
                let crypt = &mut sh.bufs().crypt;
                let n = hs.read_message(rec, crypt)?;
                if n != 0 {
                    return Err(ConnError::Protocol("payload in handshake message 2"));
                }
                let remote = remote_key(&hs)?;
                if h.expected.is_some_and(|k| k != remote) {
                    return Err(ConnError::Protocol("responder has another static key"));
                }
                self.remote_static = remote;
                // Everything that waited for the handshake, in order: the IK first request's
                // tail, then the queued requests whose expected key (if any) is this one.
                let mut plain = std::mem::take(&mut h.leftover);
                for q in std::mem::take(&mut h.queued) {
                    if q.expected.is_some_and(|k| k != remote) {
                        events.push(NetEvent::Failed { token: q.token });
                    } else {
                        plain.extend_from_slice(&q.frame);
                        self.pending.push_back(Pending { token: q.token, deadline: q.deadline });
                    }
                }
                let mut sent = 0;
                if !hs.is_handshake_finished() {
                    // XX message 3 carries the first requests.
                    sent = plain.len().min(XX3_PAYLOAD);
                    let m = hs.write_message(&plain[..sent], &mut crypt[2..])?;
                    crypt[..2].copy_from_slice(&(m as u16).to_be_bytes());
                    self.write_out(&crypt[..2 + m])?;
                }
                let ts: TransportState = hs.into_transport_mode()?;
                self.open(ts);
                self.send_plain(&plain[sent..], crypt)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(secret: &[u8; 32]) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
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
        i.read_message(&buf[..n], &mut out).unwrap();
        assert!(i.is_handshake_finished() && r.is_handshake_finished());
        // XX with a maximal message-3 payload.
        let mut i = build(TAG_XX, &a, None, true).unwrap();
        let mut r = build(TAG_XX, &b, None, false).unwrap();
        let n = i.write_message(&[], &mut buf).unwrap();
        r.read_message(&buf[..n], &mut out).unwrap();
        let n = r.write_message(&[], &mut buf).unwrap();
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
