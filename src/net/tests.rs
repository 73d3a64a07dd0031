//! Tests of `net`.

use super::*;
use std::collections::HashMap;
use table::shrink;
use crate::id::Id;

fn net(secret: u8) -> Net {
    Net::new(NetConfig::new("127.0.0.1:0".parse().unwrap(), [secret; 32])).unwrap()
}

/// Poll `n` until `done` says so, at most `max` rounds of 10 ms.
fn pump(n: &mut Net, evs: &mut Vec<NetEvent>, max: usize, done: impl Fn(&[NetEvent]) -> bool) {
    for _ in 0..max {
        if done(evs) {
            return;
        }
        n.poll(Some(Duration::from_millis(10)), evs).unwrap();
    }
}

#[test]
fn default_timeouts_are_the_spec_constants() {
    let n = net(3);
    assert_eq!(n.request_timeout, Duration::from_micros(crate::consts::REQUEST_TIMEOUT_US));
    assert_eq!(n.request_timeout, Duration::from_secs(5));
    assert_eq!(n.idle_timeout, Duration::from_micros(crate::consts::IDLE_TIMEOUT_US));
}

/// Two `Net`s on one thread, alternately polled: a request and its reply cross, and a
/// closed peer address fails at once instead of waiting out the timeout.
#[test]
fn single_thread_round_trip_and_refused() {
    let mut a = net(1);
    let mut b = net(2);
    let req = Request::Peers { key: Id([3; 32]) };
    a.send_request(7, b.local_addr(), Some(b.static_public()), &req);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..500 {
        a.poll(Some(Duration::from_millis(1)), &mut ea).unwrap();
        b.poll(Some(Duration::from_millis(1)), &mut eb).unwrap();
        for e in eb.drain(..) {
            if let NetEvent::Request { conn, request, remote_static, .. } = e {
                assert_eq!(request, req);
                assert_eq!(remote_static, a.static_public());
                b.send_reply(conn, &Reply::Bool(true));
            }
        }
        if !ea.is_empty() {
            break;
        }
    }
    match ea.pop() {
        Some(NetEvent::Reply { token: 7, reply: Reply::Bool(true), remote_static }) => {
            assert_eq!(remote_static, b.static_public())
        }
        other => panic!("expected the reply, got {:?}", other),
    }
    // Between calls neither holds scratch buffers (they went back to the pool).
    assert!(!a.scratch.holds() && !b.scratch.holds());
    // A port nobody listens on (b's listener closed by dropping b).
    let gone = b.local_addr();
    drop(b);
    a.send_request(8, gone, None, &req);
    pump(&mut a, &mut ea, 200, |e| !e.is_empty());
    assert!(matches!(ea.as_slice(), [NetEvent::Failed { token: 8 }]), "{:?}", ea);
}

/// A map emptied by closes gives its table back, but not one still half full.
#[test]
fn maps_shrink_after_closes() {
    let mut m: HashMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
    m.retain(|&k, _| k < 10);
    shrink(&mut m);
    assert!(m.capacity() < 64, "{}", m.capacity());
    assert_eq!(m.len(), 10);
    let mut m: HashMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
    m.retain(|&k, _| k < 500);
    shrink(&mut m);
    assert!(m.capacity() >= 1000, "{}", m.capacity());
}

/// 0-RTT on first contact: two requests to a known key queued before the TCP connect
/// completes both ride in IK message 1, so a responder that reads only that record (no
/// message 2 sent yet) has them both, and answers both in order with message 2: one round
/// trip after TCP's for the pair. The responder here is the handshake state machine on a
/// plain socket, so what crossed the wire is seen record by record.
#[test]
fn requests_queued_before_the_connect_ride_in_ik_message_1() {
    use super::noise::{Action, Handshake};
    use super::record::{finish, record_len, HEADER_LEN, MAX_RECORD};
    use crate::wire::decode_request;
    use crate::wire::frame::FrameDecoder;
    use std::io::{Read, Write};
    let secret = [9u8; 32];
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret)).to_bytes();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut a = net(1);
    let iam = Request::Iam { uid: Id([4; 32]), port: Some(7) };
    let peers = Request::Peers { key: Id([3; 32]) };
    a.send_request(1, l.local_addr().unwrap(), Some(public), &iam);
    a.send_request(2, l.local_addr().unwrap(), Some(public), &peers);
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    // The first record, read while the dialer runs (it writes message 1 once connected).
    let (mut ea, mut got) = (Vec::new(), Vec::new());
    let mut chunk = [0u8; 4096];
    for _ in 0..400 {
        if got.len() >= HEADER_LEN && got.len() >= HEADER_LEN + record_len(&got).unwrap() {
            break;
        }
        a.poll(Some(Duration::from_millis(1)), &mut ea).unwrap();
        if let Ok(n) = s.read(&mut chunk) {
            assert!(n > 0, "closed");
            got.extend_from_slice(&chunk[..n]);
        }
    }
    let len = record_len(&got).unwrap();
    assert_eq!(got.len(), HEADER_LEN + len, "nothing but message 1 before message 2");
    let mut buf = vec![0u8; MAX_RECORD];
    let mut responder = Handshake::Accepting;
    let Ok(Action::Open { reply: Some(m2), session, plain }) = responder.on_record(&got[HEADER_LEN..], &secret, &mut buf)
    else {
        panic!("IK message 1 must open the responder");
    };
    let mut requests = Vec::new();
    FrameDecoder::new()
        .push(plain, |body| {
            requests.push(decode_request(body).unwrap());
            Ok::<(), crate::wire::frame::FrameError>(())
        })
        .unwrap();
    assert_eq!(requests, vec![iam, peers], "both requests ride in message 1, in order");
    // Message 2, then both replies in order: the dialer matches them to its two tokens.
    let mut out = m2.record().to_vec();
    let mut ts = session.transport;
    for reply in [Reply::Bool(true), Reply::Bool(false)] {
        let mut frame = Vec::new();
        write_frame(&mut frame, |b| encode_reply(&reply, b)).unwrap();
        let mut rec = vec![0u8; HEADER_LEN + MAX_RECORD];
        let n = ts.write_message(&frame, &mut rec[HEADER_LEN..]).unwrap();
        out.extend_from_slice(finish(&mut rec, n));
    }
    s.write_all(&out).unwrap();
    pump(&mut a, &mut ea, 200, |e| e.len() >= 2);
    let replies: Vec<(u64, Reply)> = ea
        .drain(..)
        .map(|e| match e {
            NetEvent::Reply { token, reply, .. } => (token, reply),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(replies, vec![(1, Reply::Bool(true)), (2, Reply::Bool(false))]);
}

/// Poll `a` and the servers `others` (which answer every request) for about `ms`.
fn run_for(a: &mut Net, others: &mut [&mut Net], ea: &mut Vec<NetEvent>, ms: u64) {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut ev = Vec::new();
    while Instant::now() < end {
        a.poll(Some(Duration::from_millis(1)), ea).unwrap();
        for s in others.iter_mut() {
            s.poll(Some(Duration::ZERO), &mut ev).unwrap();
            for e in ev.drain(..) {
                if let NetEvent::Request { conn, .. } = e {
                    s.send_reply(conn, &Reply::Bool(true));
                }
            }
        }
    }
}

/// A connection whose latest request went to a routing contact, or whose peer joined the
/// routing table since, outlives the idle timeout; one to anyone else closes at it, and so
/// does a contact's once a request says it is no longer one. Handshakes are counted on both
/// sides.
#[test]
fn contacts_stay_connected_past_the_idle_timeout() {
    let (mut a, mut b, mut c, mut d) = (net(11), net(12), net(13), net(14));
    a.set_idle_timeout(Duration::from_millis(150));
    // The timers run at the request deadline first, so idle closes are seen soon.
    a.set_request_timeout(Duration::from_millis(300));
    let req = Request::Peers { key: Id([5; 32]) };
    a.send_request_marked(1, b.local_addr(), Some(b.static_public()), &req, true);
    a.send_request_marked(2, c.local_addr(), Some(c.static_public()), &req, false);
    a.send_request_marked(4, d.local_addr(), Some(d.static_public()), &req, false);
    let mut ea = Vec::new();
    run_for(&mut a, &mut [&mut b, &mut c, &mut d], &mut ea, 100);
    assert_eq!(ea.len(), 3, "{ea:?}");
    assert_eq!(a.open_connections(), 3);
    a.mark_contact(d.local_addr(), true);
    // Well past 150 ms, well short of the contact's 30 x 150 ms.
    run_for(&mut a, &mut [&mut b, &mut c, &mut d], &mut ea, 600);
    assert_eq!(a.open_connections(), 2, "the contacts' connections stay, the other closed");
    assert_eq!((b.open_connections(), c.open_connections(), d.open_connections()), (1, 0, 1));
    assert_eq!(a.handshakes(), Handshakes { dialed: 3, accepted: 0, completed: 3 });
    assert_eq!(b.handshakes(), Handshakes { dialed: 0, accepted: 1, completed: 1 });
    // The same connection, now for a non-contact: it closes at the idle timeout.
    a.send_request_marked(3, b.local_addr(), Some(b.static_public()), &req, false);
    a.mark_contact(d.local_addr(), false);
    run_for(&mut a, &mut [&mut b, &mut c, &mut d], &mut ea, 600);
    assert_eq!(ea.len(), 4, "{ea:?}");
    assert_eq!(a.open_connections(), 0);
    assert_eq!(a.handshakes().dialed, 3, "the request went on the open connection");
}
