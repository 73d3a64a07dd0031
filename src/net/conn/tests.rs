use super::*;
use crate::consts::{MAX_MESSAGE, OUTPUT_PAUSE_BYTES};
use std::time::Duration;
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
    // Small replies: 64 of them reserve far less than the pause threshold.
    let mut stream = Vec::new();
    write_frame(&mut stream, |b| encode_request(&Request::Peers { key: Id([1; 32]) }, b)).unwrap();
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

fn requests_of(ev: &[NetEvent]) -> Vec<Request> {
    ev.iter()
        .map(|e| match e {
            NetEvent::Request { request, .. } => request.clone(),
            other => panic!("{:?}", other),
        })
        .collect()
}

/// Replies not read: a connection reads requests only while its unsent output plus what
/// their replies may add stays under the pause threshold (two `ref`s); the rest of the read
/// waits undecoded, and comes out in order, a pause at a time, as the replies are sent.
#[test]
fn paused_reading_resumes_in_order() {
    let mut plain = Vec::new();
    let mut reqs = Vec::new();
    for i in 0..9u8 {
        let r = if i % 3 == 2 { Request::Peers { key: Id([i; 32]) } } else { Request::Ref { key: Id([i; 32]) } };
        write_frame(&mut plain, |b| encode_request(&r, b)).unwrap();
        reqs.push(r);
    }
    let (wire, ts) = sealed(&plain);
    let (mut c, _l) = inbound();
    let until = Instant::now() + Duration::from_secs(5);
    while c.sock.peer_addr().is_err() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    c.open(Session { transport: ts, remote_static: [0; 32] });
    let mut lease = Lease::default();
    let mut ev = Vec::new();
    // Cut inside a record, so the pause leaves both held frames and unread records.
    let cut = wire.len() / 2 + 7;
    c.on_bytes(&wire[..cut], &[1; 32], &mut lease.get().crypt, &mut ev).unwrap();
    assert!(c.paused);
    assert_eq!(requests_of(&ev), reqs[..2].to_vec(), "two refs reach the threshold");
    // Paused: a read adds nothing.
    c.read_all(&[1; 32], lease.get(), &mut ev).unwrap();
    assert_eq!(ev.len(), 2);
    let mut got = requests_of(&std::mem::take(&mut ev));
    let mut rest = Some(&wire[cut..]);
    for _ in 0..20 {
        if got.len() == reqs.len() {
            break;
        }
        assert!(c.unanswered <= 3, "{} unanswered", c.unanswered);
        for _ in 0..c.unanswered {
            let bufs = lease.get();
            c.reply(b"\0\0\0\x02#t", &mut bufs.crypt, Instant::now()).unwrap();
        }
        if c.may_resume() {
            c.resume(&[1; 32], lease.get(), &mut ev).unwrap();
        }
        if let Some(r) = rest.take() {
            if c.paused {
                // The socket would have kept it: here the test hands it over on resume.
                rest = Some(r);
            } else {
                c.on_bytes(r, &[1; 32], &mut lease.get().crypt, &mut ev).unwrap();
            }
        }
        got.extend(requests_of(&std::mem::take(&mut ev)));
    }
    assert_eq!(got, reqs);
    assert!(!c.paused);
    assert!(c.part.as_ref().is_none_or(|p| p.held.is_empty() && p.rbuf.is_empty()));
}

/// Unsent output counts toward the pause as well: a connection whose dialer leaves a reply
/// unread stops reading even small requests.
#[test]
fn unsent_output_pauses_reading() {
    let (mut c, _l) = inbound();
    c.unanswered = 1;
    c.part().wbuf = vec![0; OUTPUT_PAUSE_BYTES];
    let mut plain = Vec::new();
    write_frame(&mut plain, |b| encode_request(&Request::Peers { key: Id([1; 32]) }, b)).unwrap();
    let mut ev = Vec::new();
    c.feed_plain(&plain, &mut ev).unwrap();
    assert!(c.paused && c.unanswered == 2);
    c.feed_plain(&plain, &mut ev).unwrap();
    assert_eq!(ev.len(), 1, "the second waits");
    assert!(!c.may_resume());
    c.part().wpos = OUTPUT_PAUSE_BYTES;
    assert!(c.may_resume());
    assert!(c.meter().replies >= OUTPUT_PAUSE_BYTES, "capacity still counted until flushed");
}

/// A resume that pauses again on the last held frame keeps the unread records for the next
/// resume (nothing else holds the partial box then).
#[test]
fn pause_on_the_last_held_frame_keeps_the_rest() {
    let (mut c, _l) = inbound();
    let (later, ts) = sealed(b"\0\0\0\x02#t");
    c.open(Session { transport: ts, remote_static: [0; 32] });
    for i in 0..2u8 {
        write_frame(&mut c.part().held, |b| encode_request(&Request::Ref { key: Id([i; 32]) }, b)).unwrap();
    }
    c.part().rbuf = later.clone();
    c.paused = true;
    let (mut lease, mut ev) = (Lease::default(), Vec::new());
    c.resume(&[1; 32], lease.get(), &mut ev).unwrap();
    assert_eq!(ev.len(), 2);
    assert!(c.paused, "two refs reach the threshold");
    assert_eq!(c.part.as_ref().map(|p| p.rbuf.clone()), Some(later));
}
