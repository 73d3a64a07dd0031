//! The encrypted TCP transport (`peer::net`) end to end on loopback: Noise XX and IK,
//! pipelining, 1 MiB messages, hostile clients, timeouts, idle close, connection limits,
//! ciphertext-only wire, and the memory an idle connection holds.

use peer::consts::{MAX_IN_FLIGHT_PER_CONNECTION, MAX_OUTBOUND_CONNECTIONS, MAX_VALUE_SIZE};
use peer::net::{ConnId, Net, NetConfig, NetEvent};
use peer::wire::{Reply, Request};
use peer::Id;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counts the heap bytes live per thread, so one test can weigh its own connections.
struct Counting;
thread_local!(static LIVE: Cell<isize> = const { Cell::new(0) });
fn count(delta: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new as isize - l.size() as isize);
        System.realloc(p, l, new)
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

const LIMIT: Duration = Duration::from_secs(20);

fn new_net(seed: u8) -> Net {
    Net::new(NetConfig::new("127.0.0.1:0".parse().unwrap(), [seed; 32])).unwrap()
}

fn public_of(seed: u8) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([seed; 32])).to_bytes()
}

fn ref_req(i: u32) -> Request {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    Request::Ref { key: Id(k) }
}

/// The echo server's answer: what the request carried, so replies can be matched.
fn answer(r: &Request) -> Reply {
    match r {
        Request::Set { value, .. } => Reply::Value(value.clone()),
        Request::Ref { key } => Reply::Value(key.0[..].into()),
        _ => Reply::Bool(true),
    }
}

/// What a server thread saw.
struct Log {
    requests: Vec<(ConnId, [u8; 32], Request)>,
    failures: u64,
}

struct Server {
    addr: SocketAddr,
    public: [u8; 32],
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: JoinHandle<Log>,
}

impl Server {
    /// A `Net` on its own thread that answers every request (echo) or none (silent).
    fn spawn(seed: u8, echo: bool, setup: impl FnOnce(&mut Net)) -> Server {
        let mut net = new_net(seed);
        setup(&mut net);
        let (addr, public, waker) = (net.local_addr(), net.static_public(), net.waker());
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let (stop2, open2) = (stop.clone(), open.clone());
        let thread = std::thread::spawn(move || {
            let mut log = Log { requests: Vec::new(), failures: 0 };
            let mut events = Vec::new();
            let start = Instant::now();
            while !stop2.load(Ordering::SeqCst) && start.elapsed() < LIMIT {
                net.poll(Some(Duration::from_millis(20)), &mut events).unwrap();
                for e in events.drain(..) {
                    if let NetEvent::Request { conn, remote_static, request, .. } = e {
                        if echo {
                            net.send_reply(conn, &answer(&request));
                        }
                        log.requests.push((conn, remote_static, request));
                    }
                }
                open2.store(net.open_connections(), Ordering::SeqCst);
            }
            log.failures = net.failures().0;
            log
        });
        Server { addr, public, open, stop, waker, thread }
    }

    fn finish(self) -> Log {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake().unwrap();
        self.thread.join().unwrap()
    }
}

/// Poll `net` until `done` holds or `max` passes.
fn wait(net: &mut Net, events: &mut Vec<NetEvent>, max: Duration, mut done: impl FnMut(&[NetEvent]) -> bool) -> bool {
    wait_net(net, events, max, |_, e| done(e))
}

/// Poll `net` until `done` (which may look at `net`) holds or `max` passes.
fn wait_net(
    net: &mut Net,
    events: &mut Vec<NetEvent>,
    max: Duration,
    mut done: impl FnMut(&Net, &[NetEvent]) -> bool,
) -> bool {
    let end = Instant::now() + max;
    while !done(net, events) {
        if Instant::now() > end {
            return false;
        }
        net.poll(Some(Duration::from_millis(10)), events).unwrap();
    }
    true
}

/// Send one request and wait for its outcome.
fn call(net: &mut Net, token: u64, to: SocketAddr, key: Option<[u8; 32]>, r: &Request) -> NetEvent {
    let mut ev = Vec::new();
    net.send_request(token, to, key, r);
    assert!(wait(net, &mut ev, Duration::from_secs(10), |e| !e.is_empty()), "no outcome for {token}");
    assert_eq!(ev.len(), 1, "{:?}", ev);
    ev.pop().unwrap()
}

fn expect_value(e: NetEvent, token: u64, value: &[u8], server: [u8; 32]) {
    match e {
        NetEvent::Reply { token: t, reply: Reply::Value(v), remote_static } => {
            assert_eq!(t, token);
            assert!(*v == *value, "reply {token} differs ({} bytes vs {})", v.len(), value.len());
            assert_eq!(remote_static, server);
        }
        other => panic!("expected the reply to {token}, got {:?}", other),
    }
}

fn key_of(i: u32) -> Vec<u8> {
    match ref_req(i) {
        Request::Ref { key } => key.0.to_vec(),
        _ => unreachable!(),
    }
}

#[test]
fn net_is_send() {
    fn send<T: Send>() {}
    send::<Net>();
}

#[test]
fn xx_round_trip_and_reuse() {
    let server = Server::spawn(11, true, |_| {});
    let mut c = new_net(12);
    expect_value(call(&mut c, 1, server.addr, None, &ref_req(1)), 1, &key_of(1), server.public);
    expect_value(call(&mut c, 2, server.addr, None, &ref_req(2)), 2, &key_of(2), server.public);
    assert_eq!(c.open_connections(), 1);
    let log = server.finish();
    assert_eq!(log.requests.len(), 2);
    assert_eq!(log.requests[0].0, log.requests[1].0, "the connection was reused");
    assert_eq!(log.requests[0].1, public_of(12), "the server authenticated the client's key");
    assert_eq!(log.requests[1].2, ref_req(2));
}

#[test]
fn ik_round_trip() {
    let server = Server::spawn(21, true, |_| {});
    let mut c = new_net(22);
    let k = Some(server.public);
    expect_value(call(&mut c, 1, server.addr, k, &ref_req(1)), 1, &key_of(1), server.public);
    // Reuse with and without naming the key.
    expect_value(call(&mut c, 2, server.addr, k, &ref_req(2)), 2, &key_of(2), server.public);
    expect_value(call(&mut c, 3, server.addr, None, &ref_req(3)), 3, &key_of(3), server.public);
    assert_eq!(c.open_connections(), 1);
    let log = server.finish();
    assert_eq!(log.requests.len(), 3);
    assert!(log.requests.iter().all(|r| r.0 == log.requests[0].0 && r.1 == public_of(22)));
}

#[test]
fn wrong_static_key_fails() {
    let server = Server::spawn(31, true, |_| {});
    let mut c = new_net(32);
    let wrong = public_of(99);
    // IK to the wrong key: the responder cannot even read the request.
    assert!(matches!(call(&mut c, 1, server.addr, Some(wrong), &ref_req(1)), NetEvent::Failed { token: 1 }));
    // XX dial, with a request insisting on the wrong key queued behind the handshake.
    let mut ev = Vec::new();
    c.send_request(2, server.addr, None, &ref_req(2));
    c.send_request(3, server.addr, Some(wrong), &ref_req(3));
    assert!(wait(&mut c, &mut ev, Duration::from_secs(10), |e| e.len() >= 2));
    assert!(matches!(ev[0], NetEvent::Failed { token: 3 }), "{:?}", ev);
    assert!(matches!(ev[1], NetEvent::Reply { token: 2, .. }), "{:?}", ev);
    // On the open connection the mismatch fails at once, and the right key still works.
    assert!(matches!(call(&mut c, 4, server.addr, Some(wrong), &ref_req(4)), NetEvent::Failed { token: 4 }));
    expect_value(call(&mut c, 5, server.addr, Some(server.public), &ref_req(5)), 5, &key_of(5), server.public);
    let log = server.finish();
    let seen: Vec<&Request> = log.requests.iter().map(|r| &r.2).collect();
    assert_eq!(seen, vec![&ref_req(2), &ref_req(5)], "requests for the wrong key never reached the server");
}

#[test]
fn pipelining_100_requests_in_order() {
    let server = Server::spawn(41, true, |_| {});
    let mut c = new_net(42);
    let mut ev = Vec::new();
    let mut sent = 0u32;
    let mut got = Vec::new();
    // Keep the window full: all MAX_IN_FLIGHT at once, topped up as replies come.
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < 100 && Instant::now() < end {
        while sent < 100 && (sent as usize) - got.len() < MAX_IN_FLIGHT_PER_CONNECTION {
            c.send_request(sent as u64, server.addr, Some(server.public), &ref_req(sent));
            sent += 1;
        }
        c.poll(Some(Duration::from_millis(10)), &mut ev).unwrap();
        for e in ev.drain(..) {
            match e {
                NetEvent::Reply { token, reply: Reply::Value(v), .. } => got.push((token, v)),
                other => panic!("unexpected {:?}", other),
            }
        }
    }
    assert_eq!(got.len(), 100);
    for (i, (token, v)) in got.iter().enumerate() {
        assert_eq!(*token, i as u64, "replies matched in order");
        assert_eq!(**v, *key_of(i as u32));
    }
    assert_eq!(c.open_connections(), 1);
    let log = server.finish();
    assert_eq!(log.requests.len(), 100);
    assert!(log.requests.iter().all(|r| r.0 == log.requests[0].0), "one connection");
}

#[test]
fn largest_value_crosses_intact() {
    let server = Server::spawn(51, true, |_| {});
    // Three-digit bytes almost everywhere: the frames are close to 1 MiB.
    let value: Vec<u8> = (0..MAX_VALUE_SIZE).map(|i| 200 + (i * 7 % 56) as u8).collect();
    let set = Request::Set { value: value.clone().into(), lifetime: None };
    // XX: the first request is split between message 3 and transport messages.
    let mut c = new_net(52);
    expect_value(call(&mut c, 1, server.addr, None, &set), 1, &value, server.public);
    expect_value(call(&mut c, 2, server.addr, None, &set), 2, &value, server.public);
    // IK: split between message 1 and transport messages.
    let mut d = new_net(53);
    expect_value(call(&mut d, 3, server.addr, Some(server.public), &set), 3, &value, server.public);
    // Buffers are released once the big messages are through.
    assert!(c.buffered_bytes() < 16 * 1024, "{}", c.buffered_bytes());
    let log = server.finish();
    assert_eq!(log.requests.len(), 3);
    assert!(log.requests.iter().all(|r| r.2 == set));
}

/// Raw records on a plain socket.
fn write_record(s: &mut TcpStream, body: &[u8]) {
    let mut rec = (body.len() as u16).to_be_bytes().to_vec();
    rec.extend_from_slice(body);
    s.write_all(&rec).unwrap();
}

fn read_record(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

/// True once the server closed `s` (EOF or reset) within 5 s.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A hand-driven XX handshake; returns the stream and the dialer's transport state.
fn raw_xx(addr: SocketAddr, seed: u8) -> (TcpStream, snow::TransportState) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    let mut hs = snow::Builder::new("Noise_XX_25519_ChaChaPoly_SHA256".parse().unwrap())
        .local_private_key(&[seed; 32])
        .prologue(b"libpeer noise v1\x01")
        .build_initiator()
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let n = hs.write_message(&[], &mut buf).unwrap();
    let mut first = vec![1u8];
    first.extend_from_slice(&buf[..n]);
    write_record(&mut s, &first);
    let m2 = read_record(&mut s);
    hs.read_message(&m2, &mut buf).unwrap();
    let n = hs.write_message(&[], &mut buf).unwrap();
    write_record(&mut s, &buf[..n]);
    (s, hs.into_transport_mode().unwrap())
}

fn write_plain(s: &mut TcpStream, ts: &mut snow::TransportState, plain: &[u8]) {
    let mut buf = vec![0u8; 65535];
    let n = ts.write_message(plain, &mut buf).unwrap();
    write_record(s, &buf[..n]);
}

#[test]
fn hostile_clients_are_closed_others_served() {
    let server = Server::spawn(61, true, |_| {});
    let mut good = new_net(62);
    let mut token = 0;
    let mut check_good = |good: &mut Net| {
        token += 1;
        expect_value(
            call(good, token, server.addr, Some(server.public), &ref_req(token as u32)),
            token,
            &key_of(token as u32),
            server.public,
        );
    };
    check_good(&mut good);
    let mut hostile = 0;
    let addr = server.addr;
    let raw = |bytes: &[u8]| {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(bytes);
        s
    };
    let mut attack = |name: &str, mut s: TcpStream| {
        assert!(closed_by_server(&mut s), "{name}: connection not closed");
        hostile += 1;
    };
    // Garbage: an unknown pattern byte, then a long run of pseudo-random bytes.
    attack("unknown pattern", raw(&[0, 4, 9, 9, 9, 9]));
    let junk: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    attack("random bytes", raw(&junk));
    attack("empty record", raw(&[0, 0]));
    attack("record longer than the maximum", raw(&[0xff, 0xff, 1]));
    // Broken handshakes: XX message 1 too short, IK message 1 that cannot decrypt.
    attack("short XX message 1", raw(&[0, 4, 1, 1, 2, 3]));
    let mut ik = vec![0, 201];
    ik.extend_from_slice(&[2; 201]);
    attack("bad IK message 1", raw(&ik));
    // Broken after a correct handshake.
    let (mut r, mut ts) = raw_xx(addr, 63);
    // 1 MiB + 1 declared: closed without the body being sent.
    write_plain(&mut r, &mut ts, &(1_048_577u32).to_be_bytes());
    attack("oversized frame length", r);
    let (mut r, mut ts) = raw_xx(addr, 64);
    let mut buf = vec![0u8; 100];
    let n = ts.write_message(&[0, 0, 0, 2, b'#', b't'], &mut buf).unwrap();
    buf[3] ^= 0x40;
    write_record(&mut r, &buf[..n]);
    attack("bad ciphertext", r);
    let (mut r, mut ts) = raw_xx(addr, 65);
    write_plain(&mut r, &mut ts, b"\0\0\0\x05hello");
    attack("malformed datum", r);
    let (mut r, mut ts) = raw_xx(addr, 66);
    write_plain(&mut r, &mut ts, b"\0\0\0\x02#t");
    attack("reply sent as a request", r);
    check_good(&mut good);
    // The well-formed raw client is served too (the framing above is the real one).
    let (mut r, mut ts) = raw_xx(addr, 67);
    r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut text = Vec::new();
    peer::wire::encode_request(&ref_req(7), &mut text);
    let mut frame = (text.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&text);
    write_plain(&mut r, &mut ts, &frame);
    let rec = read_record(&mut r);
    let mut plain = vec![0u8; 65535];
    let n = ts.read_message(&rec, &mut plain).unwrap();
    let reply = peer::wire::decode_reply(&plain[4..n]).unwrap();
    assert_eq!(reply, Reply::Value(key_of(7).into()));
    drop(r);
    check_good(&mut good);
    let log = server.finish();
    assert!(log.failures >= hostile, "{} failures for {} attacks", log.failures, hostile);
}

#[test]
fn unanswered_requests_fail_after_timeout() {
    // A Net that never replies.
    let silent = Server::spawn(71, false, |_| {});
    let mut c = new_net(72);
    // The default is 5 s; shortened so the test stays short.
    c.set_request_timeout(Duration::from_millis(400));
    let mut ev = Vec::new();
    // `peers`, not `ref`: small replies, so the server reads all of them (it stops reading
    // `ref`s whose replies could add up past its output bound).
    let peers = |i: u64| Request::Peers { key: Id([i as u8; 32]) };
    for i in 0..MAX_IN_FLIGHT_PER_CONNECTION as u64 {
        c.send_request(i, silent.addr, Some(silent.public), &peers(i));
    }
    // One more than a connection may carry fails at once.
    c.send_request(999, silent.addr, Some(silent.public), &peers(999));
    c.poll(Some(Duration::ZERO), &mut ev).unwrap();
    assert!(matches!(ev.as_slice(), [NetEvent::Failed { token: 999 }]), "{:?}", ev);
    ev.clear();
    let start = Instant::now();
    assert!(wait(&mut c, &mut ev, Duration::from_secs(5), |e| e.len() >= MAX_IN_FLIGHT_PER_CONNECTION));
    assert!(start.elapsed() >= Duration::from_millis(300), "failed before the timeout");
    let mut tokens: Vec<u64> = ev
        .iter()
        .map(|e| match e {
            NetEvent::Failed { token } => *token,
            other => panic!("{:?}", other),
        })
        .collect();
    tokens.sort();
    assert_eq!(tokens, (0..MAX_IN_FLIGHT_PER_CONNECTION as u64).collect::<Vec<_>>());
    assert_eq!(c.open_connections(), 0, "the timed-out connection was closed");
    let log = silent.finish();
    assert_eq!(log.requests.len(), MAX_IN_FLIGHT_PER_CONNECTION);

    // A listener that accepts and never speaks: the handshake never completes.
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = mute.local_addr().unwrap();
    let mut ev = Vec::new();
    c.send_request(1000, addr, None, &ref_req(1));
    assert!(wait(&mut c, &mut ev, Duration::from_secs(5), |e| !e.is_empty()));
    assert!(matches!(ev.as_slice(), [NetEvent::Failed { token: 1000 }]));
    assert_eq!(c.open_connections(), 0);
}

#[test]
fn default_timeouts_match_the_spec() {
    // A request to a mute listener is still pending after 1 s: the timeout is not short.
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = new_net(73);
    let mut ev = Vec::new();
    c.send_request(1, mute.local_addr().unwrap(), None, &ref_req(1));
    assert!(!wait(&mut c, &mut ev, Duration::from_secs(1), |e| !e.is_empty()));
    assert_eq!(c.open_connections(), 1);
}

#[test]
fn idle_connections_are_closed() {
    let server = Server::spawn(81, true, |n| {
        n.set_idle_timeout(Duration::from_millis(200));
        n.set_request_timeout(Duration::from_millis(300));
    });
    let mut c = new_net(82);
    c.set_idle_timeout(Duration::from_millis(200));
    expect_value(call(&mut c, 1, server.addr, None, &ref_req(1)), 1, &key_of(1), server.public);
    assert_eq!(c.open_connections(), 1);
    let mut ev = Vec::new();
    assert!(wait_net(&mut c, &mut ev, Duration::from_secs(5), |n, _| n.open_connections() == 0));
    assert_eq!(c.open_connections(), 0, "the dialer closed its idle connection");
    assert!(ev.is_empty());
    let end = Instant::now() + Duration::from_secs(5);
    while server.open.load(Ordering::SeqCst) != 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.open.load(Ordering::SeqCst), 0, "the acceptor closed its side");
    // A later request dials again.
    expect_value(call(&mut c, 2, server.addr, None, &ref_req(2)), 2, &key_of(2), server.public);
    server.finish();
}

#[test]
fn idle_connection_closed_by_acceptor_only() {
    // The dialer keeps its connection; the acceptor's idle close must not fail anything,
    // and the dialer notices the close and dials again for the next request.
    let server = Server::spawn(83, true, |n| {
        n.set_idle_timeout(Duration::from_millis(100));
        n.set_request_timeout(Duration::from_millis(100));
    });
    let mut c = new_net(84);
    expect_value(call(&mut c, 1, server.addr, None, &ref_req(1)), 1, &key_of(1), server.public);
    let mut ev = Vec::new();
    assert!(wait_net(&mut c, &mut ev, Duration::from_secs(5), |n, _| n.open_connections() == 0));
    assert!(ev.is_empty(), "{:?}", ev);
    assert_eq!(c.open_connections(), 0, "the dialer saw the acceptor close");
    expect_value(call(&mut c, 2, server.addr, None, &ref_req(2)), 2, &key_of(2), server.public);
    server.finish();
}

#[test]
fn outbound_connections_are_bounded() {
    // Single thread: the client and MAX_OUTBOUND + 1 servers polled in turn.
    let mut c = new_net(90);
    let mut servers: Vec<Net> = (0..=MAX_OUTBOUND_CONNECTIONS).map(|i| new_net(20 + (i % 200) as u8)).collect();
    let mut ev = Vec::new();
    let pump = |c: &mut Net, servers: &mut [Net], answer_all: bool, ev: &mut Vec<NetEvent>| {
        c.poll(Some(Duration::from_millis(1)), ev).unwrap();
        let mut sev = Vec::new();
        for s in servers.iter_mut() {
            s.poll(Some(Duration::ZERO), &mut sev).unwrap();
            for e in sev.drain(..) {
                if let (true, NetEvent::Request { conn, request, .. }) = (answer_all, e) {
                    s.send_reply(conn, &answer(&request));
                }
            }
        }
    };
    // Busy connections: servers that do not answer. The one past the bound fails.
    for (i, s) in servers.iter().enumerate().take(MAX_OUTBOUND_CONNECTIONS) {
        c.send_request(i as u64, s.local_addr(), None, &ref_req(i as u32));
    }
    let last = servers[MAX_OUTBOUND_CONNECTIONS].local_addr();
    c.send_request(500, last, None, &ref_req(500));
    for _ in 0..20 {
        pump(&mut c, &mut servers, false, &mut ev);
    }
    assert!(matches!(ev.as_slice(), [NetEvent::Failed { token: 500 }]), "{:?}", ev);
    assert_eq!(c.open_connections(), MAX_OUTBOUND_CONNECTIONS);
    drop(servers);
    drop(c);
    // Idle connections: the least recently used one makes room.
    let mut c = new_net(91);
    let mut servers: Vec<Net> = (0..=MAX_OUTBOUND_CONNECTIONS).map(|i| new_net(20 + (i % 200) as u8)).collect();
    let mut ev = Vec::new();
    for i in 0..=MAX_OUTBOUND_CONNECTIONS {
        let a = servers[i].local_addr();
        c.send_request(i as u64, a, None, &ref_req(i as u32));
        for _ in 0..200 {
            if !ev.is_empty() {
                break;
            }
            pump(&mut c, &mut servers, true, &mut ev);
        }
        assert!(matches!(ev.as_slice(), [NetEvent::Reply { .. }]), "{i}: {:?}", ev);
        ev.clear();
        assert_eq!(c.open_connections(), (i + 1).min(MAX_OUTBOUND_CONNECTIONS));
    }
}

/// A plain TCP forwarder between `listener` and `to`, recording every byte in both
/// directions; serves `n` connections.
fn relay(listener: TcpListener, to: SocketAddr, n: usize, seen: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pipes = Vec::new();
        for _ in 0..n {
            let (a, _) = listener.accept().unwrap();
            let b = TcpStream::connect(to).unwrap();
            for (mut from, mut into) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
                let seen = seen.clone();
                pipes.push(std::thread::spawn(move || {
                    from.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                    let mut buf = [0u8; 16384];
                    while let Ok(k) = from.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                        seen.lock().unwrap().extend_from_slice(&buf[..k]);
                        if into.write_all(&buf[..k]).is_err() {
                            break;
                        }
                    }
                    let _ = into.shutdown(std::net::Shutdown::Write);
                }));
            }
        }
        for p in pipes {
            p.join().unwrap();
        }
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_wire_is_encrypted() {
    let server = Server::spawn(91, true, |_| {});
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let via = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let relay = relay(listener, server.addr, 2, seen.clone());
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8 ^ 0x5a).collect();
    let set = Request::Set { value: pattern.clone().into(), lifetime: None };
    // XX through the relay, then IK through it.
    let mut a = new_net(92);
    expect_value(call(&mut a, 1, via, None, &set), 1, &pattern, server.public);
    let mut b = new_net(93);
    expect_value(call(&mut b, 2, via, Some(server.public), &set), 2, &pattern, server.public);
    drop(a);
    drop(b);
    relay.join().unwrap();
    let log = server.finish();
    assert_eq!(log.requests.len(), 2);
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 2 * pattern.len(), "the relay carried the traffic ({} bytes)", seen.len());
    for w in pattern.chunks(16) {
        assert!(!contains(&seen, w), "pattern bytes in clear on the wire");
    }
    let mut text = Vec::new();
    peer::wire::encode_request(&set, &mut text);
    let start = text.windows(4).position(|w| w == b"#u8(").unwrap();
    assert!(!contains(&seen, b"#u8("));
    // Whole 24-byte pieces only: a short tail could occur in ciphertext by chance.
    for w in text[start..].chunks_exact(24) {
        assert!(!contains(&seen, w), "pattern text in clear on the wire");
    }
}

#[test]
fn idle_connection_memory_is_small() {
    // One client and N servers on this thread; the counting allocator weighs what the
    // connections (both ends) keep once idle.
    const N: usize = 20;
    let mut c = new_net(200);
    let mut servers: Vec<Net> = (0..N).map(|i| new_net(210 + i as u8)).collect();
    let mut ev = Vec::new();
    let mut sev = Vec::with_capacity(64);
    ev.reserve(64);
    let before = LIVE.with(|l| l.get());
    for (i, s) in servers.iter().enumerate() {
        c.send_request(i as u64, s.local_addr(), Some(s.static_public()), &ref_req(i as u32));
    }
    let mut replies = 0;
    for _ in 0..2000 {
        if replies == N {
            break;
        }
        c.poll(Some(Duration::from_millis(1)), &mut ev).unwrap();
        replies += ev.drain(..).filter(|e| matches!(e, NetEvent::Reply { .. })).count();
        for s in servers.iter_mut() {
            s.poll(Some(Duration::ZERO), &mut sev).unwrap();
            for e in sev.drain(..) {
                if let NetEvent::Request { conn, request, .. } = e {
                    s.send_reply(conn, &answer(&request));
                }
            }
        }
    }
    assert_eq!(replies, N);
    let after = LIVE.with(|l| l.get());
    let per_conn = (after - before) / N as isize;
    println!("heap per idle connection, dialer and acceptor ends together: {per_conn} bytes");
    assert!(per_conn < 8 * 1024, "{per_conn} bytes per idle connection");
    assert_eq!(c.open_connections(), N);
}
