//! Typed messages to and from their datum text (PROTOCOL.md §4).
//!
//! Encoding writes bytes directly; decoding walks the text with the datum reader's cursor, so a
//! `set` or `value` bytevector costs one pass and one `Vec<u8>`, never a `Datum` per byte. Every
//! length is checked here, so the layers above only ever see well-formed messages.

use super::datum::{read_datum, write_bytevector, write_datum, write_u64, write_uint_be, Next, ReadError, Reader};
use super::message::{BagEntry, BagKind, NamespaceRecord, Reply, Request, MAX_ENVELOPE};
use crate::consts::{K, MAX_BAG_REPLY, MAX_MESSAGE, MAX_VALUE_SIZE};
use crate::id::{Contact, Id};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// Either side of an exchange. Request and reply tags are disjoint, so one text is never both.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    Request(Request),
    Reply(Reply),
}

fn write_ip(ip: &IpAddr, out: &mut Vec<u8>) {
    // An address's text needs no escaping.
    let _ = write!(out, "\"{ip}\"");
}

fn bag_tag(kind: BagKind) -> &'static [u8] {
    match kind {
        BagKind::Popular => b"#(bag-popular ",
        BagKind::Recent => b"#(bag-recent ",
        BagKind::Sample => b"#(bag-sample ",
    }
}

/// Append the text of `r`. Lengths are the caller's to respect (the decoder enforces them).
/// The optional trailing lifetime (seconds) of `set` and `namespace-set`.
fn write_lifetime(lifetime: Option<u32>, out: &mut Vec<u8>) {
    if let Some(l) = lifetime {
        out.push(b' ');
        write_u64(l as u64, out);
    }
}

/// An optional trailing lifetime: an integer before the closing parenthesis, or nothing.
fn read_lifetime(r: &mut Reader) -> Result<Option<u32>, ReadError> {
    if r.peek() == Next::Close {
        return Ok(None);
    }
    Ok(Some(r.uint_max(u32::MAX as u64)? as u32))
}

pub fn encode_request(r: &Request, out: &mut Vec<u8>) {
    match r {
        Request::Iam { uid, port } => {
            out.extend_from_slice(b"#(iam ");
            write_uint_be(&uid.0, out);
            match port {
                Some(p) => {
                    out.push(b' ');
                    write_u64(*p as u64, out);
                }
                None => out.extend_from_slice(b" #f"),
            }
        }
        Request::Peers { key } => {
            out.extend_from_slice(b"#(peers ");
            write_uint_be(&key.0, out);
        }
        Request::Set { value, lifetime } => {
            out.extend_from_slice(b"#(set ");
            write_bytevector(value, out);
            write_lifetime(*lifetime, out);
        }
        Request::Ref { key } => {
            out.extend_from_slice(b"#(ref ");
            write_uint_be(&key.0, out);
        }
        Request::BagAdd { key, value } => {
            out.extend_from_slice(b"#(bag-add ");
            write_uint_be(&key.0, out);
            out.push(b' ');
            write_bytevector(value, out);
        }
        Request::BagQuery { kind, key } => {
            out.extend_from_slice(bag_tag(*kind));
            write_uint_be(&key.0, out);
        }
        Request::NamespaceSet { record: rec, lifetime } => {
            out.extend_from_slice(b"#(namespace-set ");
            write_uint_be(&rec.public_key, out);
            out.push(b' ');
            write_uint_be(&rec.key, out);
            out.push(b' ');
            write_bytevector(&rec.value, out);
            out.push(b' ');
            write_bytevector(&rec.signature, out);
            out.push(b' ');
            write_u64(rec.seq, out);
            write_lifetime(*lifetime, out);
        }
        Request::NamespaceRef { public_key, key } => {
            out.extend_from_slice(b"#(namespace-ref ");
            write_uint_be(public_key, out);
            out.push(b' ');
            write_uint_be(key, out);
        }
    }
    out.push(b')');
}

/// Append the text of `r`. Lengths are the caller's to respect (the decoder enforces them).
pub fn encode_reply(r: &Reply, out: &mut Vec<u8>) {
    match r {
        Reply::Bool(b) => return out.extend_from_slice(if *b { b"#t" } else { b"#f" }),
        Reply::Welcome { ip, port, uid } => {
            out.extend_from_slice(b"#(welcome ");
            write_ip(ip, out);
            out.push(b' ');
            write_u64(*port as u64, out);
            out.push(b' ');
            write_uint_be(&uid.0, out);
        }
        Reply::Peers(contacts) => {
            out.extend_from_slice(b"#(peer");
            for c in contacts {
                out.extend_from_slice(b" #(");
                write_uint_be(&c.id.0, out);
                out.push(b' ');
                write_ip(&c.addr.ip(), out);
                out.push(b' ');
                write_u64(c.addr.port() as u64, out);
                out.push(b' ');
                write_uint_be(&c.static_key, out);
                out.push(b')');
            }
        }
        Reply::Value(v) => {
            out.extend_from_slice(b"#(value ");
            write_bytevector(v, out);
        }
        Reply::Bag(entries) => {
            out.extend_from_slice(b"#(bag");
            for e in entries {
                out.extend_from_slice(b" #(");
                write_bytevector(&e.value, out);
                out.push(b' ');
                write_u64(e.count as u64, out);
                out.push(b' ');
                write_u64(e.seconds, out);
                out.push(b')');
            }
        }
        Reply::Namespace { value, signature, seq } => {
            out.extend_from_slice(b"#(namespace ");
            write_bytevector(value, out);
            out.push(b' ');
            write_bytevector(signature, out);
            out.push(b' ');
            write_u64(*seq, out);
        }
    }
    out.push(b')');
}

pub fn encode_message(m: &Message, out: &mut Vec<u8>) {
    match m {
        Message::Request(r) => encode_request(r, out),
        Message::Reply(r) => encode_reply(r, out),
    }
}

fn read_ip(r: &mut Reader) -> Result<IpAddr, ReadError> {
    let at = r.pos();
    r.string()?.parse().map_err(|_| ReadError { reason: "bad IP address", offset: at })
}

fn read_port(r: &mut Reader) -> Result<u16, ReadError> {
    Ok(r.uint_max(u16::MAX as u64)? as u16)
}

/// One message at the cursor, through its closing parenthesis.
fn read_message(r: &mut Reader) -> Result<Message, ReadError> {
    use Message::{Reply as P, Request as Q};
    if r.peek() == Next::Bool {
        return Ok(P(Reply::Bool(r.boolean()?)));
    }
    r.open_vector()?;
    let tag_at = r.pos();
    let tag = r.symbol()?;
    let query = |r: &mut Reader, kind| Ok::<_, ReadError>(Q(Request::BagQuery { kind, key: Id(r.id()?) }));
    let m = match tag {
        "iam" => {
            let uid = Id(r.id()?);
            let port = if r.peek() == Next::Bool {
                if r.boolean()? {
                    return Err(r.err("iam port must be an integer or #f"));
                }
                None
            } else {
                Some(read_port(r)?)
            };
            Q(Request::Iam { uid, port })
        }
        "peers" => Q(Request::Peers { key: Id(r.id()?) }),
        "set" => Q(Request::Set { value: r.bytevector(MAX_VALUE_SIZE)?.into(), lifetime: read_lifetime(r)? }),
        "ref" => Q(Request::Ref { key: Id(r.id()?) }),
        "bag-add" => Q(Request::BagAdd { key: Id(r.id()?), value: r.bytes_exact()? }),
        "bag-popular" => query(r, BagKind::Popular)?,
        "bag-recent" => query(r, BagKind::Recent)?,
        "bag-sample" => query(r, BagKind::Sample)?,
        "namespace-set" => {
            let record = NamespaceRecord {
                public_key: r.id()?,
                key: r.id()?,
                value: r.bytes_exact()?,
                signature: r.bytes_exact()?,
                seq: r.u64()?,
            };
            Q(Request::NamespaceSet { record, lifetime: read_lifetime(r)? })
        }
        "namespace-ref" => Q(Request::NamespaceRef { public_key: r.id()?, key: r.id()? }),
        "welcome" => {
            let ip = read_ip(r)?;
            let port = read_port(r)?;
            P(Reply::Welcome { ip, port, uid: Id(r.id()?) })
        }
        "peer" => {
            let mut contacts = Vec::new();
            // The closing parenthesis is consumed here; `close` below sees the outer one.
            while r.peek() != Next::Close {
                if contacts.len() == K {
                    return Err(r.err("more than K contacts"));
                }
                r.open_vector()?;
                let id = Id(r.id()?);
                let ip = read_ip(r)?;
                let port = read_port(r)?;
                let static_key = r.id()?;
                r.close()?;
                contacts.push(Contact { id, addr: SocketAddr::new(ip, port), static_key });
            }
            P(Reply::Peers(contacts))
        }
        "value" => P(Reply::Value(r.bytevector(MAX_VALUE_SIZE)?.into())),
        "bag" => {
            let mut entries = Vec::new();
            while r.peek() != Next::Close {
                if entries.len() == MAX_BAG_REPLY {
                    return Err(r.err("more than MAX_BAG_REPLY bag entries"));
                }
                r.open_vector()?;
                let value = r.bytes_exact()?;
                let count = r.uint_max(u32::MAX as u64)? as u32;
                let seconds = r.u64()?;
                r.close()?;
                entries.push(BagEntry { value, count, seconds });
            }
            P(Reply::Bag(entries))
        }
        "namespace" => P(Reply::Namespace { value: r.bytes_exact()?, signature: r.bytes_exact()?, seq: r.u64()? }),
        _ => return Err(ReadError { reason: "unknown message tag", offset: tag_at }),
    };
    r.close()?;
    Ok(m)
}

/// Decode one message body (as a frame carries it).
pub fn decode_message(text: &[u8]) -> Result<Message, ReadError> {
    if text.len() > MAX_MESSAGE {
        return Err(ReadError { reason: "message longer than MAX_MESSAGE", offset: MAX_MESSAGE });
    }
    let mut r = Reader::new(text);
    let m = read_message(&mut r)?;
    r.finish()?;
    Ok(m)
}

pub fn decode_request(text: &[u8]) -> Result<Request, ReadError> {
    match decode_message(text)? {
        Message::Request(q) => Ok(q),
        Message::Reply(_) => Err(ReadError { reason: "expected a request, got a reply", offset: 0 }),
    }
}

pub fn decode_reply(text: &[u8]) -> Result<Reply, ReadError> {
    match decode_message(text)? {
        Message::Reply(p) => Ok(p),
        Message::Request(_) => Err(ReadError { reason: "expected a reply, got a request", offset: 0 }),
    }
}

/// Wrap a message's text for the program-supplied transport: `#(from "ip" port MESSAGE)`,
/// `from` being the sender's address on the program's network.
pub fn encode_envelope(from: SocketAddr, message: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"#(from ");
    write_ip(&from.ip(), out);
    out.push(b' ');
    write_u64(from.port() as u64, out);
    out.push(b' ');
    out.extend_from_slice(message);
    out.push(b')');
}

/// Unwrap an envelope: the sender's address and its decoded message. The message alone obeys
/// the same limits as one arriving in a frame.
pub fn decode_envelope(text: &[u8]) -> Result<(SocketAddr, Message), ReadError> {
    if text.len() > MAX_ENVELOPE {
        return Err(ReadError { reason: "envelope longer than MAX_ENVELOPE", offset: MAX_ENVELOPE });
    }
    let mut r = Reader::new(text);
    r.open_vector()?;
    let tag_at = r.pos();
    if r.symbol()? != "from" {
        return Err(ReadError { reason: "envelope must start with from", offset: tag_at });
    }
    let ip = read_ip(&mut r)?;
    let port = read_port(&mut r)?;
    let start = r.pos();
    let m = read_message(&mut r)?;
    if r.pos() - start > MAX_MESSAGE {
        return Err(ReadError { reason: "message longer than MAX_MESSAGE", offset: start });
    }
    r.close()?;
    r.finish()?;
    Ok((SocketAddr::new(ip, port), m))
}

/// Read any datum with the safe reader and write it back in canonical (R7RS `write`) text.
pub fn normalize(text: &[u8]) -> Result<Vec<u8>, ReadError> {
    let d = read_datum(text)?;
    let mut out = Vec::with_capacity(text.len().min(MAX_ENVELOPE));
    write_datum(&d, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn id(n: u64) -> Id {
        let mut b = [0u8; 32];
        b[24..].copy_from_slice(&n.to_be_bytes());
        Id(b)
    }
    fn req_text(r: &Request) -> String {
        let mut out = Vec::new();
        encode_request(r, &mut out);
        String::from_utf8(out).unwrap()
    }
    fn rep_text(r: &Reply) -> String {
        let mut out = Vec::new();
        encode_reply(r, &mut out);
        String::from_utf8(out).unwrap()
    }
    fn localhost(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }
    fn bv(b: &[u8]) -> String {
        format!("#u8({})", b.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" "))
    }

    /// Every shape with its exact text.
    pub(crate) fn golden() -> Vec<(Message, String)> {
        let v32: [u8; 32] = std::array::from_fn(|i| i as u8 * 8);
        let s64: [u8; 64] = std::array::from_fn(|i| 255 - i as u8);
        let (v32t, s64t) = (bv(&v32), bv(&s64));
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let rec = NamespaceRecord { public_key: [0xff; 32], key: id(2).0, value: v32, signature: s64, seq: u64::MAX };
        let c1 = Contact { id: id(7), addr: localhost(4001), static_key: id(9).0 };
        let c2 = Contact {
            id: Id([0xff; 32]),
            addr: SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 65535),
            static_key: [0; 32],
        };
        use Message::{Reply as P, Request as Q};
        vec![
            (Q(Request::Iam { uid: id(1), port: Some(4000) }), "#(iam 1 4000)".into()),
            (Q(Request::Iam { uid: Id::ZERO, port: None }), "#(iam 0 #f)".into()),
            (Q(Request::Peers { key: Id([0xff; 32]) }), format!("#(peers {max})")),
            (Q(Request::Set { value: vec![1, 2, 255].into(), lifetime: None }), "#(set #u8(1 2 255))".into()),
            (Q(Request::Set { value: vec![].into(), lifetime: Some(0) }), "#(set #u8() 0)".into()),
            (
                Q(Request::Set { value: vec![7].into(), lifetime: Some(u32::MAX) }),
                "#(set #u8(7) 4294967295)".into(),
            ),
            (Q(Request::Ref { key: id(u64::MAX) }), "#(ref 18446744073709551615)".into()),
            (Q(Request::BagAdd { key: id(3), value: v32 }), format!("#(bag-add 3 {v32t})")),
            (Q(Request::BagQuery { kind: BagKind::Popular, key: id(4) }), "#(bag-popular 4)".into()),
            (Q(Request::BagQuery { kind: BagKind::Recent, key: id(5) }), "#(bag-recent 5)".into()),
            (Q(Request::BagQuery { kind: BagKind::Sample, key: id(6) }), "#(bag-sample 6)".into()),
            (
                Q(Request::NamespaceSet { record: rec, lifetime: None }),
                format!("#(namespace-set {max} 2 {v32t} {s64t} 18446744073709551615)"),
            ),
            (
                Q(Request::NamespaceSet { record: rec, lifetime: Some(86400) }),
                format!("#(namespace-set {max} 2 {v32t} {s64t} 18446744073709551615 86400)"),
            ),
            (Q(Request::NamespaceRef { public_key: id(8).0, key: id(0).0 }), "#(namespace-ref 8 0)".into()),
            (
                P(Reply::Welcome { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 4000, uid: id(5) }),
                r#"#(welcome "127.0.0.1" 4000 5)"#.into(),
            ),
            (
                P(Reply::Welcome { ip: IpAddr::V6(Ipv6Addr::LOCALHOST), port: 0, uid: id(0) }),
                r#"#(welcome "::1" 0 0)"#.into(),
            ),
            (P(Reply::Peers(vec![])), "#(peer)".into()),
            (P(Reply::Peers(vec![c1, c2])), format!(r#"#(peer #(7 "127.0.0.1" 4001 9) #({max} "::1" 65535 0))"#)),
            (P(Reply::Bool(true)), "#t".into()),
            (P(Reply::Bool(false)), "#f".into()),
            (P(Reply::Value(vec![0, 10, 100].into())), "#(value #u8(0 10 100))".into()),
            (P(Reply::Bag(vec![])), "#(bag)".into()),
            (
                P(Reply::Bag(vec![
                    BagEntry { value: v32, count: u32::MAX, seconds: 0 },
                    BagEntry { value: [1; 32], count: 1, seconds: 60 },
                ])),
                format!("#(bag #({v32t} 4294967295 0) #({} 1 60))", bv(&[1; 32])),
            ),
            (P(Reply::Namespace { value: v32, signature: s64, seq: 1 }), format!("#(namespace {v32t} {s64t} 1)")),
        ]
    }

    #[test]
    fn golden_texts_and_round_trips() {
        for (m, text) in golden() {
            let mut out = Vec::new();
            encode_message(&m, &mut out);
            assert_eq!(String::from_utf8(out.clone()).unwrap(), text);
            assert_eq!(decode_message(&out).unwrap(), m, "{text}");
            assert_eq!(normalize(&out).unwrap(), out, "{text}");
            match &m {
                Message::Request(q) => {
                    assert_eq!(req_text(q), text);
                    assert_eq!(decode_request(&out).unwrap(), *q);
                    assert!(decode_reply(&out).is_err());
                }
                Message::Reply(p) => {
                    assert_eq!(rep_text(p), text);
                    assert_eq!(decode_reply(&out).unwrap(), *p);
                    assert!(decode_request(&out).is_err());
                }
            }
            // Guile/Chez spelling and loose whitespace read the same.
            let loose =
                text.replace("#u8(", "#vu8(").replace(' ', " \n\t ").replace("#f", "#false").replace("#t", "#true");
            assert_eq!(decode_message(loose.as_bytes()).unwrap(), m, "{loose}");
            assert_eq!(normalize(loose.as_bytes()).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn rejects_bad_messages() {
        let n2_256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        let z31 = bv(&[0; 31]);
        let z32 = bv(&[0; 32]);
        let contact = r#"#(1 "127.0.0.1" 1 1)"#;
        let entry = format!("#({z32} 1 1)");
        for (bad, why) in [
            ("#(hello 1)".to_string(), "unknown message tag"),
            ("#(iam 1 4000".into(), "unterminated vector"),
            ("#(iam 1 4000) x".into(), "trailing garbage after the datum"),
            ("#(iam 1 4000 5)".into(), "unexpected extra element"),
            ("#(iam 1 65536)".into(), "integer out of range"),
            ("#(iam 1 #t)".into(), "iam port must be an integer or #f"),
            ("#(iam -1 1)".into(), "negative integer"),
            (format!("#(peers {n2_256})"), "identifier not below 2^256"),
            (format!("#(peers 1{})", "0".repeat(80)), "integer has too many digits"),
            ("#(peers)".into(), "unexpected ')'"),
            ("#(peers \"1\")".into(), "unexpected character"),
            ("#(set #u8(1 256))".into(), "bytevector element out of 0..=255"),
            ("#(set 1)".into(), "expected a bytevector"),
            (format!("#(bag-add 1 {z31})"), "bytevector has the wrong length"),
            (format!("#(bag-add 1 #u8({} 0))", "0 ".repeat(32)), "bytevector too long"),
            (r#"#(welcome "localhost" 1 1)"#.into(), "bad IP address"),
            (r#"#(welcome "127.0.0.1 1 1)"#.into(), "unterminated string or symbol"),
            (format!("#(peer {})", vec![contact; K + 1].join(" ")), "more than K contacts"),
            (
                format!("#(bag {})", vec![entry.as_str(); MAX_BAG_REPLY + 1].join(" ")),
                "more than MAX_BAG_REPLY bag entries",
            ),
            (format!("#(bag #({z32} 4294967296 1))"), "integer out of range"),
            (format!("#(namespace {z32} {z32} 1)"), "bytevector has the wrong length"),
            (format!("#(namespace {z32} {} 18446744073709551616)", bv(&[0; 64])), "integer too large"),
            ("(iam 1 2)".into(), "expected a vector"),
            ("#(#(iam 1 2))".into(), "expected a symbol"),
            ("#t #f".into(), "trailing garbage after the datum"),
            ("".into(), "expected a vector"),
        ] {
            assert_eq!(decode_message(bad.as_bytes()).unwrap_err().reason, why, "{bad}");
        }
        // Counts at the limits are fine.
        assert!(decode_message(format!("#(peer {})", vec![contact; K].join(" ")).as_bytes()).is_ok());
        assert!(decode_message(format!("#(bag {})", vec![entry.as_str(); MAX_BAG_REPLY].join(" ")).as_bytes()).is_ok());
        let long = vec![b' '; MAX_MESSAGE + 1];
        assert_eq!(decode_message(&long).unwrap_err().reason, "message longer than MAX_MESSAGE");
    }

    #[test]
    fn max_value_size_is_exact() {
        let encode = |n: usize, reply: bool| {
            let mut out = Vec::new();
            let v = vec![255u8; n];
            if reply {
                encode_reply(&Reply::Value(v.into()), &mut out)
            } else {
                encode_request(&Request::Set { value: v.into(), lifetime: Some(u32::MAX) }, &mut out)
            }
            out
        };
        // `set` with the longest lifetime is the binding one.
        let fits = encode(MAX_VALUE_SIZE, false);
        assert!(fits.len() <= MAX_MESSAGE);
        assert!(encode(MAX_VALUE_SIZE + 1, false).len() > MAX_MESSAGE);
        assert!(encode(MAX_VALUE_SIZE, true).len() <= MAX_MESSAGE);
        assert_eq!(
            decode_request(&fits).unwrap(),
            Request::Set { value: vec![255; MAX_VALUE_SIZE].into(), lifetime: Some(u32::MAX) }
        );
        assert_eq!(MAX_VALUE_SIZE, 262_138);
        // One byte more is refused even when the text itself would fit.
        let mut set = encode(MAX_VALUE_SIZE + 1, false);
        set.truncate(set.len() - 12);
        set.push(b')');
        set = String::from_utf8(set).unwrap().replace("255", "0").into_bytes();
        assert!(set.len() <= MAX_MESSAGE);
        assert_eq!(decode_request(&set).unwrap_err().reason, "bytevector too long");
    }

    #[test]
    fn envelopes() {
        for (m, text) in golden() {
            for from in [localhost(5000), "[::1]:1".parse().unwrap()] {
                let mut env = Vec::new();
                encode_envelope(from, text.as_bytes(), &mut env);
                assert_eq!(decode_envelope(&env).unwrap(), (from, m.clone()));
            }
        }
        let mut env = Vec::new();
        encode_envelope(localhost(4000), b"#(iam 1 #f)", &mut env);
        assert_eq!(env, br#"#(from "127.0.0.1" 4000 #(iam 1 #f))"#);
        for bad in [
            r#"#(to "127.0.0.1" 4000 #t)"#,
            r#"#(from "127.0.0.1" 4000 #t #t)"#,
            r#"#(from "127.0.0.1" 4000)"#,
            r#"#(from "127.0.0.1" 4000 #(nope))"#,
            r#"#(from "x" 4000 #t)"#,
            r#"#(from "127.0.0.1" 4000 #t) 1"#,
        ] {
            assert!(decode_envelope(bad.as_bytes()).is_err(), "{bad}");
        }
        // The largest message in the longest header fits MAX_ENVELOPE.
        let widest: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535".parse().unwrap();
        let mut msg = Vec::new();
        encode_reply(&Reply::Value(vec![255; MAX_VALUE_SIZE].into()), &mut msg);
        let mut env = Vec::new();
        encode_envelope(widest, &msg, &mut env);
        assert!(env.len() <= MAX_ENVELOPE);
        assert!(decode_envelope(&env).is_ok());
    }

    #[test]
    fn normalize_any_datum() {
        assert_eq!(normalize(b" #( a  #vu8( 1 ) \"s\" #true 007 ) ").unwrap(), br#"#(a #u8(1) "s" #t 7)"#);
        assert!(normalize(b"(a b)").is_err());
    }
}
