//! The transport's defences of issue 13, each attacked by a hostile peer (`peer::attack::Hostile`,
//! a real Noise client) from its own loopback /24 (127.0.9.x) while an honest client on another
//! (127.0.2.1) checks that the victim (127.0.1.1) still serves it: unread replies, partial
//! frames, per-address caps, connection churn, the retry on a reused connection, and outgoing
//! connections bound to the listening address. Figures are printed (`--nocapture`).

use peer::attack::Hostile;
use peer::consts::{MAX_MESSAGE, MAX_VALUE_SIZE, OUTPUT_BUDGET_BYTES, OUTPUT_PAUSE_BYTES, PARTIAL_INPUT_BUDGET_BYTES};
use peer::net::{ConnId, Defences, Net, NetConfig, NetEvent, NetLimits};
use peer::wire::{Reply, Request};
use peer::{Contact, Id};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// No victim thread runs longer than this.
const LIMIT: Duration = Duration::from_secs(60);
/// Margin over a budget for what one operation adds before the budget is enforced (one reply
/// or one read's worth of frame) and allocator rounding.
const SLACK: usize = 2 * 1024 * 1024;

fn ip(c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, c, d))
}

fn strict() -> NetLimits {
    NetLimits { exempt_loopback: false, ..NetLimits::default() }
}

/// What the victim's thread saw, published after each turn.
#[derive(Default, Clone, Debug)]
struct Live {
    /// (unsent replies, partial input) now, and their peaks.
    held: (usize, usize),
    peak_replies: usize,
    peak_input: usize,
    peak_buffered: usize,
    open: usize,
    defences: Defences,
    /// Connections requests arrived on, per source address.
    conns_of: HashMap<IpAddr, HashSet<ConnId>>,
    requests: usize,
}

/// A `Net` on its own thread answering every request: a `ref` with the largest value (a
/// reply of about 1 MiB), `peers` with 20 contacts, anything else `#t`.
struct Victim {
    addr: SocketAddr,
    public: [u8; 32],
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    live: Arc<Mutex<Live>>,
    thread: JoinHandle<()>,
}

fn answer(r: &Request, big: &Arc<[u8]>, contacts: &[Contact]) -> Reply {
    match r {
        Request::Ref { .. } => Reply::Value(big.clone()),
        Request::Peers { .. } => Reply::Peers(contacts.to_vec()),
        _ => Reply::Bool(true),
    }
}

impl Victim {
    fn spawn(limits: NetLimits, setup: impl FnOnce(&mut Net)) -> Victim {
        let cfg = NetConfig { limits, ..NetConfig::new(SocketAddr::new(ip(1, 1), 0), [1; 32]) };
        let mut net = Net::new(cfg).unwrap();
        setup(&mut net);
        let (addr, public, waker) = (net.local_addr(), net.static_public(), net.waker());
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Mutex::new(Live::default()));
        let (stop2, live2) = (stop.clone(), live.clone());
        let thread = std::thread::spawn(move || {
            let big: Arc<[u8]> = vec![255u8; MAX_VALUE_SIZE].into();
            let contacts: Vec<Contact> = (0..20u8)
                .map(|i| Contact {
                    id: Id([i.wrapping_mul(37) | 0x80; 32]),
                    addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, i)), 65000),
                    static_key: [0xee; 32],
                })
                .collect();
            let mut l = Live::default();
            let mut events = Vec::new();
            let start = Instant::now();
            let peak = |net: &Net, l: &mut Live| {
                let h = net.held_bytes();
                l.peak_replies = l.peak_replies.max(h.0);
                l.peak_input = l.peak_input.max(h.1);
                l.peak_buffered = l.peak_buffered.max(net.buffered_bytes());
            };
            while !stop2.load(Ordering::SeqCst) && start.elapsed() < LIMIT {
                net.poll(Some(Duration::from_millis(10)), &mut events).unwrap();
                peak(&net, &mut l);
                for e in events.drain(..) {
                    if let NetEvent::Request { conn, from, request, .. } = e {
                        net.send_reply(conn, &answer(&request, &big, &contacts));
                        peak(&net, &mut l);
                        l.conns_of.entry(from.ip()).or_default().insert(conn);
                        l.requests += 1;
                    }
                }
                l.held = net.held_bytes();
                l.open = net.open_connections();
                l.defences = net.defences();
                *live2.lock().unwrap() = l.clone();
            }
        });
        Victim { addr, public, stop, waker, live, thread }
    }

    fn live(&self) -> Live {
        self.live.lock().unwrap().clone()
    }

    /// Wait at most `max` for `done` to hold of what the victim saw.
    fn wait(&self, max: Duration, done: impl Fn(&Live) -> bool) -> bool {
        let end = Instant::now() + max;
        while !done(&self.live()) {
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    fn finish(self) -> Live {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake().unwrap();
        self.thread.join().unwrap();
        let l = self.live.lock().unwrap().clone();
        l
    }
}

/// An honest peer's transport, listening (and so dialing) on `at`.
fn honest(at: IpAddr, seed: u8) -> Net {
    Net::new(NetConfig::new(SocketAddr::new(at, 0), [seed; 32])).unwrap()
}

/// Send one request and wait for its outcome: the reply, or None if it failed.
fn call(net: &mut Net, token: u64, v: &Victim, r: &Request) -> Option<Reply> {
    net.send_request(token, v.addr, Some(v.public), r);
    let mut ev = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        net.poll(Some(Duration::from_millis(5)), &mut ev).unwrap();
        if let Some(e) = ev.pop() {
            return match e {
                NetEvent::Reply { token: t, reply, .. } if t == token => Some(reply),
                NetEvent::Failed { token: t } if t == token => None,
                other => panic!("unexpected {other:?}"),
            };
        }
    }
    None
}

fn peers_req(i: u32) -> Request {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    Request::Peers { key: Id(k) }
}

fn ref_req(i: u32) -> Request {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    Request::Ref { key: Id(k) }
}

/// Resident memory of this process, KiB (the victim shares it with the attackers and the test).
fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Honest requests (alternately `ref`, with a 1 MiB reply, and `peers`) while `attacking`;
/// returns (answered, sent, the process's largest RSS seen in KiB).
fn honest_traffic(net: &mut Net, v: &Victim, attacking: &AtomicBool, max: usize) -> (usize, usize, usize) {
    let (mut ok, mut sent, mut rss) = (0, 0, 0);
    while sent < max && (sent < 5 || attacking.load(Ordering::SeqCst)) {
        rss = rss.max(rss_kib());
        let r = if sent % 2 == 0 { ref_req(sent as u32) } else { peers_req(sent as u32) };
        sent += 1;
        if call(net, sent as u64, v, &r).is_some() {
            ok += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (ok, sent, rss)
}

/// One connection that sends 64 `ref`s and never reads: the victim stops reading it once the
/// replies that may be queued reach the pause threshold, so it holds about 3 MiB, not 64.
#[test]
fn unread_replies_pause_one_connection() {
    let v = Victim::spawn(strict(), |_| {});
    let mut h = Hostile::connect(v.addr, Some(ip(9, 1)), [9; 32]).unwrap();
    let refs: Vec<Request> = (0..64).map(ref_req).collect();
    h.send_requests(&refs).unwrap();
    assert!(v.wait(Duration::from_secs(10), |l| l.defences.paused >= 1), "never paused: {:?}", v.live());
    // Let whatever the pause lets through be answered.
    std::thread::sleep(Duration::from_millis(300));
    let l = v.live();
    println!("one connection, 64 unread refs: {} requests read, {} bytes of replies held", l.requests, l.held.0);
    assert!(l.requests < 8, "{} requests read while paused", l.requests);
    assert!(l.peak_replies <= 2 * (OUTPUT_PAUSE_BYTES + MAX_MESSAGE), "{}", l.peak_replies);
    let mut c = honest(ip(2, 1), 2);
    assert!(matches!(call(&mut c, 1, &v, &ref_req(1)), Some(Reply::Value(_))));
    drop(h);
    v.finish();
}

/// Many connections from two addresses flood `ref`s and `peers` and read nothing: the unsent
/// replies stay within the victim's budget, stalled connections are closed, and an honest
/// client is answered throughout.
#[test]
fn unread_replies_stay_within_the_budget() {
    let v = Victim::spawn(strict(), |n| n.set_request_timeout(Duration::from_secs(1)));
    let rss_before = rss_kib();
    let attacking = Arc::new(AtomicBool::new(true));
    let (addr, flag) = (v.addr, attacking.clone());
    let attacker = std::thread::spawn(move || {
        let mut held = Vec::new();
        for i in 0..12u8 {
            if let Ok(mut h) = Hostile::connect(addr, Some(ip(9, 1)), [10 + i; 32]) {
                let _ = h.send_requests(&(0..64).map(ref_req).collect::<Vec<_>>());
                held.push(h);
            }
        }
        let mut floods: Vec<Hostile> =
            (0..12u8).filter_map(|i| Hostile::connect(addr, Some(ip(9, 2)), [40 + i; 32]).ok()).collect();
        for f in &floods {
            let _ = f.set_timeouts(None, Some(Duration::from_millis(100)));
        }
        // `peers` in batches of 32 (within the in-flight bound) until the victim stops reading.
        let end = Instant::now() + Duration::from_secs(4);
        let batch: Vec<Request> = (0..32).map(peers_req).collect();
        while Instant::now() < end && !floods.is_empty() {
            floods.retain_mut(|f| f.send_requests(&batch).is_ok());
            std::thread::sleep(Duration::from_millis(5));
        }
        flag.store(false, Ordering::SeqCst);
        // Held open, unread, until the victim gives up on them.
        std::thread::sleep(Duration::from_secs(2));
        drop(held);
    });
    let mut c = honest(ip(2, 1), 2);
    let (ok, sent, rss_peak) = honest_traffic(&mut c, &v, &attacking, 400);
    attacker.join().unwrap();
    assert!(v.wait(Duration::from_secs(10), |l| l.held.0 < 64 * 1024), "replies still held: {:?}", v.live());
    let l = v.finish();
    println!(
        "unread replies: honest {ok}/{sent}; peak unsent replies {} KiB, peak buffered {} KiB; \
         process RSS {rss_before} KiB, at most {rss_peak} KiB during; {:?}",
        l.peak_replies / 1024,
        l.peak_buffered / 1024,
        l.defences
    );
    assert_eq!(ok, sent, "honest requests failed");
    assert!(l.peak_replies <= OUTPUT_BUDGET_BYTES + SLACK, "{}", l.peak_replies);
    assert!(l.defences.paused >= 12, "{:?}", l.defences);
    assert!(l.defences.closed_output + l.defences.closed_output_budget >= 1, "{:?}", l.defences);
}

/// 300 connections (from 20 addresses) each send a frame announcing 1 MiB and all of it but
/// one byte: partial input stays within the victim's budget, the connections holding the
/// largest frames are closed, and an honest client's large and small requests still pass.
#[test]
fn partial_frames_stay_within_the_budget() {
    let v = Victim::spawn(strict(), |_| {});
    let rss_before = rss_kib();
    let attacking = Arc::new(AtomicBool::new(true));
    let (addr, flag) = (v.addr, attacking.clone());
    let attacker = std::thread::spawn(move || {
        let mut almost = (MAX_MESSAGE as u32).to_be_bytes().to_vec();
        almost.resize(4 + MAX_MESSAGE - 1, b' ');
        let mut held = Vec::new();
        let mut sent = 0;
        for i in 0..300u32 {
            let from = ip(9, 1 + (i % 20) as u8);
            if let Ok(mut h) = Hostile::connect(addr, Some(from), [(i % 250) as u8; 32]) {
                if h.send_plain(&almost).is_ok() {
                    sent += 1;
                }
                held.push(h);
            }
        }
        flag.store(false, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
        drop(held);
        sent
    });
    let mut c = honest(ip(2, 1), 2);
    let (ok, n, rss_peak) = honest_traffic(&mut c, &v, &attacking, 1000);
    let big = Request::Set { value: vec![7u8; MAX_VALUE_SIZE].into(), lifetime: None };
    assert!(matches!(call(&mut c, 9999, &v, &big), Some(Reply::Bool(true))), "a whole 1 MiB request");
    let frames = attacker.join().unwrap();
    let l = v.finish();
    println!(
        "partial frames: {frames} of 1 MiB - 1 sent; honest {ok}/{n}; peak partial input {} KiB, \
         peak buffered {} KiB; process RSS {rss_before} KiB, at most {rss_peak} KiB during; {:?}",
        l.peak_input / 1024,
        l.peak_buffered / 1024,
        l.defences
    );
    assert_eq!(ok, n, "honest requests failed");
    assert!(l.peak_input <= PARTIAL_INPUT_BUDGET_BYTES + SLACK, "{}", l.peak_input);
    assert!(l.defences.closed_input_budget >= 1, "{:?}", l.defences);
}

/// A plain TCP connection from `from` that sends nothing (a handshake left hanging).
fn half_open(from: IpAddr, to: SocketAddr) -> std::net::TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(from, 0).into()).unwrap();
    s.connect(&to.into()).unwrap();
    let s: std::net::TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    s
}

/// True if the victim closed `s` (end of stream or reset) within its read timeout.
fn closed(s: &mut std::net::TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// Inbound connections and handshakes per remote address are capped (loopback not exempt
/// here); other addresses are served, and loopback is exempt by default.
#[test]
fn per_address_caps() {
    let limits = NetLimits { max_inbound_per_ip: 4, max_handshakes_per_ip: 2, exempt_loopback: false };
    let v = Victim::spawn(limits, |_| {});
    let mut four: Vec<Hostile> =
        (0..4).map(|i| Hostile::connect(v.addr, Some(ip(9, 1)), [20 + i; 32]).unwrap()).collect();
    for h in &mut four {
        assert!(h.request(&peers_req(1)).is_ok());
    }
    let fifth = Hostile::connect_timeout(v.addr, Some(ip(9, 1)), [30; 32], Duration::from_secs(2));
    assert!(fifth.is_err(), "a fifth connection from one address");
    let mut other = Hostile::connect(v.addr, Some(ip(9, 2)), [31; 32]).unwrap();
    assert!(other.request(&peers_req(2)).is_ok());
    // Handshakes: two left hanging from one address, and the third is closed at accept.
    let mut hanging = vec![half_open(ip(9, 3), v.addr), half_open(ip(9, 3), v.addr)];
    assert!(v.wait(Duration::from_secs(5), |l| l.open == 7), "{:?}", v.live());
    let mut third = half_open(ip(9, 3), v.addr);
    assert!(closed(&mut third), "a third handshake from one address");
    assert!(Hostile::connect_timeout(v.addr, Some(ip(9, 3)), [32; 32], Duration::from_secs(2)).is_err());
    assert!(!closed(&mut hanging[0]), "the first two wait for their handshake");
    drop(hanging.pop());
    assert!(v.wait(Duration::from_secs(5), |l| l.open == 6), "{:?}", v.live());
    assert!(Hostile::connect(v.addr, Some(ip(9, 3)), [33; 32]).is_ok(), "room again once one closed");
    let mut c = honest(ip(2, 1), 2);
    assert!(call(&mut c, 1, &v, &peers_req(3)).is_some());
    let l = v.finish();
    println!("per-address caps: {:?}", l.defences);
    assert!(l.defences.refused_per_ip >= 3, "{:?}", l.defences);
    drop(four);
    // Default limits: loopback is exempt, 20 connections from one address are fine.
    let v = Victim::spawn(NetLimits::default(), |_| {});
    let many: Vec<Hostile> = (0..20).map(|i| Hostile::connect(v.addr, Some(ip(9, 1)), [50 + i; 32]).unwrap()).collect();
    assert_eq!(many.len(), 20);
    assert_eq!(v.finish().defences.refused_per_ip, 0);
}

/// Churn: 600 new authenticated connections from one address (loopback, so not capped: the
/// inbound bound is what is reached), half of them sending a request. Two honest clients on
/// other addresses keep their one connection each: one busy throughout, one idle for the
/// whole churn (the least recently used, the first to go were newcomers allowed to evict
/// it), and all their requests are answered.
#[test]
fn churn_does_not_evict_useful_connections() {
    let v = Victim::spawn(NetLimits::default(), |_| {});
    let mut busy = honest(ip(2, 1), 2);
    let mut idle = honest(ip(2, 2), 3);
    assert!(call(&mut idle, 1, &v, &peers_req(0)).is_some(), "warm");
    assert!(call(&mut busy, 1, &v, &peers_req(0)).is_some(), "warm");
    let attacking = Arc::new(AtomicBool::new(true));
    let (addr, flag) = (v.addr, attacking.clone());
    let churner = std::thread::spawn(move || {
        let mut open = std::collections::VecDeque::new();
        let (mut made, mut refused) = (0, 0);
        for i in 0..600u32 {
            match Hostile::connect_timeout(addr, Some(ip(9, 1)), [(i % 250) as u8; 32], Duration::from_secs(2)) {
                Ok(mut h) => {
                    made += 1;
                    if i % 2 == 0 {
                        let _ = h.request(&peers_req(i));
                    }
                    open.push_back(h);
                }
                Err(_) => refused += 1,
            }
            // Keep more open than the victim accepts; reset the oldest (no TIME_WAIT).
            if open.len() > 300 {
                open.pop_front().unwrap().reset();
            }
        }
        flag.store(false, Ordering::SeqCst);
        (made, refused)
    });
    let (ok, sent, _) = honest_traffic(&mut busy, &v, &attacking, 2000);
    let (made, refused) = churner.join().unwrap();
    let after = call(&mut idle, 2, &v, &peers_req(1)).is_some();
    let l = v.finish();
    let conns = |at: IpAddr| l.conns_of.get(&at).map_or(0, |s| s.len());
    println!(
        "churn: {made} attacker connections made, {refused} refused; busy honest {ok}/{sent}; \
         honest connections {} and {}; {:?}",
        conns(ip(2, 1)),
        conns(ip(2, 2)),
        l.defences
    );
    assert_eq!(ok, sent, "honest requests failed");
    assert!(after, "the idle honest client's request failed");
    assert_eq!((conns(ip(2, 1)), conns(ip(2, 2))), (1, 1), "an honest connection was replaced");
    assert!(l.defences.evicted + l.defences.refused_full >= 1, "the inbound bound was reached: {:?}", l.defences);
}

/// A request on a reused idle connection that the acceptor closed meanwhile (the dialer had
/// not noticed yet) is sent again on a new connection instead of failing; a second failure
/// is not retried.
#[test]
fn request_on_a_closed_reused_connection_is_retried_once() {
    let v = Victim::spawn(NetLimits::default(), |n| {
        n.set_idle_timeout(Duration::from_millis(100));
        n.set_request_timeout(Duration::from_millis(100));
    });
    let mut c = honest(ip(2, 1), 2);
    assert!(call(&mut c, 1, &v, &peers_req(1)).is_some());
    // The acceptor closes the idle connection (after 200 ms); the dialer is not polled
    // meanwhile, so it still holds the connection when it sends the next request.
    assert!(v.wait(Duration::from_secs(5), |l| l.open == 0));
    assert_eq!(c.open_connections(), 1);
    assert!(matches!(call(&mut c, 2, &v, &peers_req(2)), Some(Reply::Peers(_))), "retried on a new connection");
    assert_eq!(c.defences().retried, 1);
    // Now the victim goes away altogether: the retry's new connection is refused, and the
    // request fails rather than being tried again.
    let addr = v.addr;
    let public = v.public;
    assert!(v.wait(Duration::from_secs(5), |l| l.open == 0));
    let l = v.finish();
    assert_eq!(l.conns_of[&ip(2, 1)].len(), 2);
    assert_eq!(c.open_connections(), 1);
    c.send_request(3, addr, Some(public), &peers_req(3));
    let mut ev = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while ev.is_empty() && Instant::now() < end {
        c.poll(Some(Duration::from_millis(5)), &mut ev).unwrap();
    }
    assert!(matches!(ev.as_slice(), [NetEvent::Failed { token: 3 }]), "{ev:?}");
    assert_eq!(c.defences().retried, 2);
}

/// A peer listening on 127.0.1.10 dials from 127.0.1.10, so the peers it greets see it at
/// its own address.
#[test]
fn outgoing_connections_come_from_the_listening_address() {
    let v = Victim::spawn(NetLimits::default(), |_| {});
    let mut c = honest(ip(1, 10), 3);
    assert!(call(&mut c, 1, &v, &peers_req(1)).is_some());
    let mut any = honest("0.0.0.0".parse().unwrap(), 4);
    assert!(call(&mut any, 1, &v, &peers_req(1)).is_some());
    let l = v.finish();
    assert!(l.conns_of.contains_key(&ip(1, 10)), "{:?}", l.conns_of.keys());
    assert!(l.conns_of.contains_key(&ip(0, 1)), "unspecified: the kernel's choice, {:?}", l.conns_of.keys());
    assert_eq!(l.conns_of.len(), 2);
}
