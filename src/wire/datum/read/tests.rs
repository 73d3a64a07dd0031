//! Tests of `read`.

/// Chibi writes bytevector elements in hex: `#u8(#x01 #xff)`.
#[test]
fn radix_prefixed_integers() {
    use super::*;
    assert_eq!(read_datum(b"#u8(#x01 #x02 #xFF #d7 #b11 #o17)").unwrap(), Datum::Bytes(vec![1, 2, 255, 7, 3, 15]));
    assert_eq!(read_datum(b"#x100").unwrap(), Datum::Int(Integer::from_u64(256)));
    let mut k = [0; 32];
    k[31] = 16;
    assert_eq!(
        crate::wire::decode_request(b"#(ref #x10)").unwrap(),
        crate::wire::Request::Ref { key: crate::id::Id(k) }
    );
    for bad in [&b"#u8(#x100)"[..], b"#xZZ", b"#x", b"#q1", b"#u8(#x-1)"] {
        assert!(read_datum(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    // 66 hex digits is the most an integer may have (its decimal text then has at most 80).
    assert!(read_datum(format!("#x{}", "f".repeat(66)).as_bytes()).is_ok());
    assert!(read_datum(format!("#x{}", "f".repeat(67)).as_bytes()).is_err());
}

use super::*;

fn rd(s: &str) -> Result<Datum, ReadError> {
    read_datum(s.as_bytes())
}
fn int(v: u64) -> Datum {
    Datum::Int(Integer::from_u64(v))
}

#[test]
fn reads_the_subset() {
    assert_eq!(rd("42").unwrap(), int(42));
    assert_eq!(rd(" -0 ").unwrap(), int(0));
    assert_eq!(rd("+7").unwrap(), int(7));
    assert_eq!(rd("-5").unwrap(), Datum::Int(Integer::new(true, &[5])));
    assert_eq!(rd("#t").unwrap(), Datum::Bool(true));
    assert_eq!(rd("#true").unwrap(), Datum::Bool(true));
    assert_eq!(rd("#false").unwrap(), Datum::Bool(false));
    assert_eq!(rd("bag-add").unwrap(), Datum::Sym("bag-add".into()));
    assert_eq!(rd("+").unwrap(), Datum::Sym("+".into()));
    assert_eq!(rd("|a b|").unwrap(), Datum::Sym("a b".into()));
    assert_eq!(rd("#u8()").unwrap(), Datum::Bytes(vec![]));
    assert_eq!(rd("#vu8(1\t2\n255)").unwrap(), Datum::Bytes(vec![1, 2, 255]));
    assert_eq!(rd("#u8(+1 007 0)").unwrap(), Datum::Bytes(vec![1, 7, 0]));
    assert_eq!(
        rd("\n#( a \"x\"#t #() )\r\n").unwrap(),
        Datum::Vector(vec![
            Datum::Sym("a".into()),
            Datum::Str("x".into()),
            Datum::Bool(true),
            Datum::Vector(vec![])
        ])
    );
    assert_eq!(rd(r#""q\"b\\n\n\t\r\a\x41;\x3bb;é""#).unwrap(), Datum::Str("q\"b\\n\n\t\r\x07A\u{3bb}é".into()));
    assert_eq!(rd("\"a\\  \n  b\"").unwrap(), Datum::Str("ab".into()));
}

#[test]
fn rejects() {
    for bad in [
        "",
        " ",
        "(1 2)",
        "'a",
        "#\\a",
        "1.5",
        "1e3",
        "1/2",
        "+i",
        ".5",
        "#(1 2",
        "#(1 2))",
        "\"abc",
        "#u8(256)",
        "#u8(-1)",
        "#u8(1 a)",
        "#u8(1.0)",
        "#u8 (1)",
        "#t1",
        "#tru",
        "a'b",
        "1 2",
        "#(a) x",
        "; c\n1",
        "#;1 2",
        "#|c|# 1",
        "[1]",
        "\"\\q\"",
        "\"\\x110000;\"",
        "\"\\xd800;\"",
        "\"\\x41\"",
        "#(a#t)",
        "é",
        "@a",
        "#vu8(1",
        "|abc",
    ] {
        assert!(rd(bad).is_err(), "accepted {bad:?}");
    }
    assert!(read_datum(b"\"\xff\"").is_err());
    let deep = |n: usize| format!("{}{}", "#(".repeat(n), ")".repeat(n));
    assert!(rd(&deep(MAX_DATUM_DEPTH)).is_ok());
    assert_eq!(rd(&deep(MAX_DATUM_DEPTH + 1)).unwrap_err().reason, "datum nested too deeply");
    assert!(rd(&deep(100_000)).is_err());
    let e = rd("#(1 2) x").unwrap_err();
    assert_eq!((e.reason, e.offset), ("trailing garbage after the datum", 7));
}
