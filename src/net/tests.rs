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
