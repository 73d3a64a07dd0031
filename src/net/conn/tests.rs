use super::*;
use crate::consts::MAX_MESSAGE;
use crate::id::Id;
use crate::net::scratch::Lease;
use crate::wire::frame::write_frame;
use crate::wire::{encode_request, Request};

/// An accepted-side connection over a real (unused) loopback socket.
fn inbound() -> (Conn, std::net::TcpListener) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    (Conn::accepted(9, sock, addr, Instant::now(), Instant::now()), l)
}

fn frames(n: u8) -> (Vec<u8>, Vec<Request>) {
    let mut stream = Vec::new();
    let mut reqs = Vec::new();
    for i in 0..n {
        let r = if i % 2 == 0 { Request::Ref { key: Id([i; 32]) } } else { Request::Set { value: vec![i; 300].into(), lifetime: None } };
        write_frame(&mut stream, |b| encode_request(&r, b)).unwrap();
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
        c.open(Session { transport: ts, remote_static: [0; 32] });
        let mut lease = Lease::default();
        let mut ev = Vec::new();
        c.on_bytes(&wire[..cut], &[1; 32], &mut lease.get().crypt, &mut ev).unwrap();
        c.on_bytes(&wire[cut..], &[1; 32], &mut lease.get().crypt, &mut ev).unwrap();
        let got: Vec<&Request> = ev
            .iter()
            .map(|e| match e {
                NetEvent::Request { request, .. } => request,
                other => panic!("{:?}", other),
            })
            .collect();
        assert_eq!(got, reqs.iter().collect::<Vec<_>>(), "cut at {cut}");
        assert!(c.part.is_none(), "cut at {cut}");
        assert!(lease.holds());
        lease.release();
        assert!(!lease.holds());
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

/// A peer announcing 1 MiB costs what it has sent, not what it announced.
#[test]
fn partial_frame_grows_with_what_arrived() {
    let (mut c, _l) = inbound();
    let mut ev = Vec::new();
    let mut data = (MAX_MESSAGE as u32).to_be_bytes().to_vec();
    data.push(b'#');
    c.feed_plain(&data, &mut ev).unwrap();
    assert!(c.buffered() < 4096, "{}", c.buffered());
    for _ in 0..4 {
        c.feed_plain(&[b' '; 16 * 1024], &mut ev).unwrap();
    }
    assert!(c.buffered() < 3 * 64 * 1024, "{}", c.buffered());
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
