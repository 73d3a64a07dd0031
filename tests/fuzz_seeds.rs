//! The fuzz targets' seed corpus, fuzz/corpus/<target>/ (docs/FUZZING.md): real messages from
//! the wire encoders, every request and reply kind, and real handshake records.
//!
//! `cargo test --release --test fuzz_seeds -- --ignored` writes it anew (the handshake
//! records differ at each run: their ephemeral keys are random). The other test keeps the
//! checked-in seeds honest: each still decodes as what its target expects, and the two
//! connection-layer hooks run on theirs (their properties checked) in the normal test suite.
//! Files named `regression-*` are inputs a fuzzer found, kept as found.

use peer::net::fuzzing;
use peer::wire::datum::read_datum;
use peer::wire::frame::write_frame;
use peer::wire::{decode_reply, decode_request, encode_reply, encode_request};
use peer::wire::{BagEntry, BagKind, NamespaceRecord, Reply, Request};
use peer::{Contact, Id};
use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn id(b: u8) -> Id {
    let mut k = [b; 32];
    k[0] = b >> 1;
    Id(k)
}

fn requests() -> Vec<(&'static str, Request)> {
    let record =
        NamespaceRecord { public_key: [7; 32], key: [8; 32], value: [9; 32], signature: [10; 64], seq: 1 << 50 };
    vec![
        ("iam", Request::Iam { uid: id(200), port: Some(4242) }),
        ("iam-client", Request::Iam { uid: id(3), port: None }),
        ("peers", Request::Peers { key: id(255) }),
        ("set", Request::Set { value: (0..=255u8).collect::<Vec<_>>().into(), lifetime: None }),
        ("set-lifetime", Request::Set { value: b"hello".to_vec().into(), lifetime: Some(86_400) }),
        ("ref", Request::Ref { key: Id::hash(b"hello") }),
        ("bag-add", Request::BagAdd { key: id(17), value: [0xab; 32] }),
        ("bag-popular", Request::BagQuery { kind: BagKind::Popular, key: id(18) }),
        ("bag-recent", Request::BagQuery { kind: BagKind::Recent, key: id(19) }),
        ("bag-sample", Request::BagQuery { kind: BagKind::Sample, key: id(20) }),
        ("namespace-set", Request::NamespaceSet { record, lifetime: None }),
        ("namespace-set-lifetime", Request::NamespaceSet { record, lifetime: Some(u32::MAX) }),
        ("namespace-ref", Request::NamespaceRef { public_key: [7; 32], key: [8; 32] }),
    ]
}

fn replies() -> Vec<(&'static str, Reply)> {
    let contact = |b: u8, addr: &str| Contact { id: id(b), addr: addr.parse().unwrap(), static_key: [b; 32] };
    vec![
        ("welcome", Reply::Welcome { ip: "127.0.1.9".parse().unwrap(), port: 7000, uid: id(44) }),
        ("welcome-v6", Reply::Welcome { ip: "2001:db8::1".parse().unwrap(), port: 1, uid: id(45) }),
        ("peer", Reply::Peers(vec![contact(1, "127.0.0.1:4000"), contact(2, "[::1]:65535")])),
        ("peer-empty", Reply::Peers(Vec::new())),
        ("true", Reply::Bool(true)),
        ("false", Reply::Bool(false)),
        ("value", Reply::Value(b"hello".to_vec().into())),
        (
            "bag",
            Reply::Bag(vec![
                BagEntry { value: [1; 32], count: 3, seconds: 60 },
                BagEntry { value: [2; 32], count: u32::MAX, seconds: 0 },
            ]),
        ),
        ("namespace", Reply::Namespace { value: [3; 32], signature: [4; 64], seq: u64::MAX }),
    ]
}

/// How other Schemes write messages (PROTOCOL.md §2): R6RS bytevectors, hex elements,
/// `#true`, escapes, extra whitespace.
const OTHER_SYNTAX: &[(&str, &str)] = &[
    ("set-guile", "#(set #vu8(1 2 255) 60)"),
    ("set-chibi", "#(set #u8(#x01 #x02 #xff))"),
    ("iam-spaced", "#(  iam\n 123456789\t#false )"),
];

fn text(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

fn framed(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in bodies {
        write_frame(&mut out, |o| o.extend_from_slice(b)).unwrap();
    }
    out
}

fn with_prefix(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

/// Every seed: (target, file name, contents).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let reqs: Vec<(String, Vec<u8>)> =
        requests().into_iter().map(|(n, r)| (n.to_string(), text(|o| encode_request(&r, o)))).collect();
    let reps: Vec<(String, Vec<u8>)> =
        replies().into_iter().map(|(n, r)| (n.to_string(), text(|o| encode_reply(&r, o)))).collect();
    let other: Vec<(String, Vec<u8>)> =
        OTHER_SYNTAX.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect();
    for (n, t) in reqs.iter().chain(&other) {
        out.push(("request", n.clone(), t.clone()));
    }
    for (n, t) in &reps {
        out.push(("reply", n.clone(), t.clone()));
    }
    for (n, t) in reqs.iter().chain(&reps).chain(&other) {
        out.push(("datum", n.clone(), t.clone()));
    }
    out.push(("datum", "string-escapes".into(), br#"#("a\x41;\n\t\\" |sym bol| -12 #xFF)"#.to_vec()));
    let bodies: Vec<Vec<u8>> = reqs.iter().map(|(_, t)| t.clone()).collect();
    let stream = framed(&bodies);
    let mut broken = framed(&bodies[..2]);
    broken.extend_from_slice(&framed(&[b"#(nonsense)".to_vec()]));
    let mut oversized = framed(&bodies[..1]);
    oversized.extend_from_slice(&(1u32 << 20 | 1).to_be_bytes());
    // frame: the piece-size byte, then frames (PROTOCOL.md §2).
    out.push(("frame", "requests".into(), with_prefix(&[0], &stream)));
    out.push(("frame", "requests-in-pieces".into(), with_prefix(&[5], &stream)));
    out.push(("frame", "oversized".into(), with_prefix(&[2], &oversized)));
    let replies_stream = framed(&reps.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>());
    out.push(("frame", "replies".into(), with_prefix(&[0], &replies_stream)));
    // transport: the piece-size byte, the mode byte (bit 0 XX, bit 1 ride in the handshake,
    // bits 2-7 record size), then the plaintext stream.
    let modes: [(&str, u8); 5] = [
        ("ik-ride", 0b10),
        ("xx-ride", 0b11),
        ("xx", 0b01),
        ("ik-small-records", 3 << 2),
        ("xx-tiny-records", 1 << 2 | 1),
    ];
    for (n, mode) in modes {
        out.push(("transport", n.into(), with_prefix(&[0, mode], &stream)));
    }
    out.push(("transport", "ik-pieces".into(), with_prefix(&[7, 0b10], &stream)));
    out.push(("transport", "malformed".into(), with_prefix(&[0, 0b10], &broken)));
    out.push(("transport", "oversized".into(), with_prefix(&[0, 0b01], &oversized)));
    // accept: real first records, whole and in pieces.
    let names = [
        "ik",
        "ik-pieces",
        "xx",
        "xx-pieces",
        "ik-wrong-key",
        "ik-wrong-key-pieces",
        "xx-forged-3",
        "xx-forged-3-pieces",
    ];
    for (n, s) in names.iter().zip(fuzzing::accept_seeds(&framed(&bodies[..4]))) {
        out.push(("accept", n.to_string(), s));
    }
    out
}

/// Three `ref`s and a `peers` nobody answers: the accepting connection pauses after the
/// second `ref` (its reply reservations reach the pause threshold), hands over those two
/// and keeps the rest unread; the transport target's model accepts exactly that.
#[test]
fn transport_target_models_the_pause_on_unread_refs() {
    let refs: Vec<Vec<u8>> = requests()
        .into_iter()
        .filter(|(n, _)| *n == "ref" || *n == "peers")
        .map(|(_, r)| text(|o| encode_request(&r, o)))
        .collect();
    assert_eq!(refs.len(), 2);
    let (peers, r) = (&refs[0], &refs[1]);
    let stream = framed(&[r.clone(), r.clone(), r.clone(), peers.clone()]);
    for mode in [0b10u8, 0b01] {
        assert!(fuzzing::transport(&with_prefix(&[0, mode], &stream)), "paused");
    }
    assert!(!fuzzing::transport(&with_prefix(&[0, 0b10], &framed(&[r.clone(), peers.clone()]))), "one ref: no pause");
}

/// Write the corpus anew (by hand: the handshake records change at each run).
#[test]
#[ignore]
fn write_corpus() {
    for (target, name, data) in seeds() {
        let dir = corpus(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), data).unwrap();
    }
}

fn files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(corpus(target))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
        .map(|e| {
            let p = e.unwrap().path();
            let data = fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    v.sort();
    v
}

/// The checked-in seeds are what their targets expect (messages that decode, datums that
/// read), every kind is there, the whole corpus stays small, and the two connection hooks
/// hold their properties on their seeds.
#[test]
fn corpus_is_real() {
    let mut total = 0;
    for target in ["datum", "frame", "request", "reply", "accept", "transport"] {
        let fs = files(target);
        assert!(fs.len() >= 4, "fuzz/corpus/{target} has {} seeds", fs.len());
        for (p, data) in &fs {
            total += data.len();
            let name = p.display();
            // Inputs a fuzzer found are kept as they were: refused, and rightly.
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("regression-")) {
                continue;
            }
            match target {
                "datum" => assert!(read_datum(data).is_ok(), "{name}"),
                "request" => assert!(decode_request(data).is_ok(), "{name}"),
                "reply" => assert!(decode_reply(data).is_ok(), "{name}"),
                // The IK first records to the right key carry 4 requests, and open.
                "accept" => {
                    let n = fuzzing::accept(data);
                    let file = p.file_name().unwrap().to_string_lossy();
                    assert_eq!(n, if file.starts_with("ik") && !file.contains("wrong") { 4 } else { 0 }, "{name}");
                }
                "transport" => {
                    fuzzing::transport(data);
                }
                _ => {}
            }
        }
    }
    assert!(total < 1 << 20, "the corpus holds {total} bytes");
    for (target, kinds) in [("request", requests().len()), ("reply", replies().len())] {
        assert!(files(target).len() >= kinds, "fuzz/corpus/{target} lacks a kind");
    }
}
