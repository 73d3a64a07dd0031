//! What the WAN model charges in CPU, measured at start-up on this machine with the crate's
//! own code: each kind of request and reply (a typical one: 20 contacts in a `peers` reply,
//! `--value-size` bytes in a `set`) framed, encoded and sealed as a transport message, then
//! opened and decoded; and whole Noise IK and XX handshakes in memory (`net::noise`).

use peer::core::RequestKind;
use peer::net::handshake_in_memory;
use peer::sim::CpuCosts;
use peer::wire::frame::write_frame;
use peer::wire::{
    decode_reply, decode_request, encode_reply, encode_request, BagEntry, BagKind, NamespaceRecord, Reply, Request,
};
use peer::{Contact, Id};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use snow::TransportState;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Time spent measuring each figure.
const BUDGET: Duration = Duration::from_millis(40);

/// A typical request of each kind and its typical reply (`RequestKind::ALL` order).
fn typical(value_size: usize, rng: &mut StdRng) -> Vec<(Request, Reply)> {
    let id = |rng: &mut StdRng| Id::random(rng);
    let contacts: Vec<Contact> = (0..20)
        .map(|i| Contact {
            id: id(rng),
            addr: format!("198.51.{i}.{}:7000", rng.gen::<u8>()).parse().unwrap(),
            static_key: rng.gen(),
        })
        .collect();
    let value: Vec<u8> = (0..value_size).map(|_| rng.gen()).collect();
    let record =
        NamespaceRecord { public_key: rng.gen(), key: rng.gen(), value: rng.gen(), signature: [7; 64], seq: 3 };
    let bag = (0..20).map(|i| BagEntry { value: rng.gen(), count: i, seconds: 60 }).collect();
    let (uid, key) = (id(rng), id(rng));
    vec![
        (
            Request::Iam { uid, port: Some(7000) },
            Reply::Welcome { ip: "198.51.100.7".parse().unwrap(), port: 7000, uid },
        ),
        (Request::Peers { key }, Reply::Peers(contacts.clone())),
        (Request::Set { value: value.clone().into(), lifetime: None }, Reply::Bool(true)),
        // Most `ref` replies on a lookup's way name contacts; the holder's value costs as much.
        (Request::Ref { key }, Reply::Peers(contacts)),
        (Request::BagAdd { key, value: rng.gen() }, Reply::Bool(true)),
        (Request::BagQuery { kind: BagKind::Popular, key }, Reply::Bag(bag)),
        (Request::NamespaceSet { record, lifetime: None }, Reply::Bool(true)),
        (
            Request::NamespaceRef { public_key: record.public_key, key: record.key },
            Reply::Namespace { value: record.value, signature: record.signature, seq: record.seq },
        ),
    ]
}

/// Nanoseconds per call of `f`, over `BUDGET` after a warm-up.
fn ns_per(mut f: impl FnMut()) -> u64 {
    for _ in 0..3 {
        f();
    }
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < BUDGET {
        f();
        n += 1;
    }
    (t.elapsed().as_nanos() / u128::from(n.max(1))) as u64
}

/// Two sessions: one only sends (its peer would fall out of step), one sends and receives.
struct Sessions {
    alone: TransportState,
    tx: TransportState,
    rx: TransportState,
}

/// Encoding `encode`'s frame and sealing it, and (second figure) that then opening it and
/// decoding it with `decode`: the first is the sender's cost, the difference the receiver's.
fn seal_open(s: &mut Sessions, encode: impl Fn(&mut Vec<u8>), decode: impl Fn(&[u8]) -> bool) -> (u64, u64) {
    let Sessions { alone, tx, rx } = s;
    let (mut frame, mut sealed, mut opened) = (Vec::new(), vec![0u8; 65_535], vec![0u8; 65_535]);
    let send = ns_per(|| {
        frame.clear();
        write_frame(&mut frame, &encode).expect("fits a frame");
        black_box(alone.write_message(&frame, &mut sealed).expect("seals"));
    });
    let both = ns_per(|| {
        frame.clear();
        write_frame(&mut frame, &encode).expect("fits a frame");
        let n = tx.write_message(&frame, &mut sealed).expect("seals");
        let m = rx.read_message(&sealed[..n], &mut opened).expect("opens");
        assert!(decode(&opened[4..m]), "own encoding decodes");
    });
    (send, both.saturating_sub(send))
}

/// The costs, measured; and the rows that say what they are.
pub fn measure(value_size: usize) -> Result<(CpuCosts, Vec<Vec<String>>), String> {
    let mut rng = StdRng::seed_from_u64(5);
    let (a, b): ([u8; 32], [u8; 32]) = (rng.gen(), rng.gen());
    let first = {
        let mut f = Vec::new();
        write_frame(&mut f, |o| encode_request(&Request::Peers { key: Id::random(&mut rng) }, o)).expect("fits");
        f
    };
    let hs = |ik: bool| ns_per(|| drop(black_box(handshake_in_memory(ik, &a, &b, &first).expect("handshake"))));
    let mut c = CpuCosts { ik: hs(true), xx: hs(false), ..CpuCosts::ZERO };
    let pair = || handshake_in_memory(true, &a, &b, &first).ok_or("handshake failed");
    let ((alone, _), (tx, rx)) = (pair()?, pair()?);
    let mut s = Sessions { alone, tx, rx };
    let us = |ns: u64| format!("{:.1}", ns as f64 / 1000.0);
    let mut rows = vec![
        vec!["handshake, Noise IK, both sides".into(), "-".into(), us(c.ik), "-".into()],
        vec!["handshake, Noise XX, both sides".into(), "-".into(), us(c.xx), "-".into()],
    ];
    for (k, (req, rep)) in typical(value_size, &mut rng).into_iter().enumerate() {
        let name = RequestKind::ALL[k].name();
        let mut text = Vec::new();
        encode_request(&req, &mut text);
        (c.encode_request[k], c.decode_request[k]) =
            seal_open(&mut s, |o| encode_request(&req, o), |t| decode_request(t).is_ok());
        rows.push(vec![
            format!("{name} request"),
            text.len().to_string(),
            us(c.encode_request[k]),
            us(c.decode_request[k]),
        ]);
        text.clear();
        encode_reply(&rep, &mut text);
        (c.encode_reply[k], c.decode_reply[k]) =
            seal_open(&mut s, |o| encode_reply(&rep, o), |t| decode_reply(t).is_ok());
        rows.push(vec![format!("  its reply"), text.len().to_string(), us(c.encode_reply[k]), us(c.decode_reply[k])]);
    }
    Ok((c, rows))
}
