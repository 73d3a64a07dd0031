//! Tests spanning the reader and the writer (round trips), and the shared digit helpers.

use super::syntax::*;
use crate::consts::MAX_INTEGER_DIGITS;
use super::*;

fn rd(s: &str) -> Result<Datum, ReadError> {
    read_datum(s.as_bytes())
}
fn wr(d: &Datum) -> String {
    let mut out = Vec::new();
    write_datum(d, &mut out);
    String::from_utf8(out).unwrap()
}
fn int(v: u64) -> Datum {
    Datum::Int(Integer::from_u64(v))
}

#[test]
fn eight_digits_at_once() {
    for v in [0u64, 1, 9, 10, 12345678, 87654321, 99999999, 10000000, 90909090] {
        assert_eq!(parse8(format!("{v:08}").as_bytes().try_into().unwrap()), v);
    }
}

#[test]
fn big_integers() {
    let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    let d = rd(max).unwrap();
    assert_eq!(d, Datum::Int(Integer::new(false, &[0xff; 32])));
    assert_eq!(wr(&d), max);
    let two256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    let d = rd(two256).unwrap();
    let mut m = vec![1u8];
    m.extend([0u8; 32]);
    assert_eq!(d, Datum::Int(Integer::new(false, &m)));
    assert_eq!(wr(&d), two256);
    assert_eq!(wr(&int(10_000_000_000_000_000_000)), "10000000000000000000");
    assert_eq!(wr(&Datum::Int(Integer::new(false, &[1; 70]))), "14799852646358985695064919925444191729085965570260550699514534510767153578008426870925987157559446147221444607963779783920668959333038402480633075495814494288821158145");
    let nines = "9".repeat(MAX_INTEGER_DIGITS);
    assert_eq!(wr(&rd(&nines).unwrap()), nines);
    assert_eq!(rd(&format!("{nines}9")).unwrap_err().reason, "integer has too many digits");
    // Found by fuzzing: a hex integer read must write back as decimal text that reads again.
    let hex = format!("#x{}", "f".repeat(66));
    assert_eq!(rd(&wr(&rd(&hex).unwrap())), rd(&hex));
    assert_eq!(rd(&format!("#x{}", "D".repeat(67))).unwrap_err().reason, "integer has too many digits");
    assert_eq!(wr(&rd(&format!("#b{}", "1".repeat(80))).unwrap()), ((1u128 << 80) - 1).to_string());
}

#[test]
fn writes_like_r7rs() {
    let d = Datum::Vector(vec![
        Datum::Sym("a".into()),
        Datum::Bytes(vec![1, 2, 255, 0, 10, 99, 100]),
        Datum::Str("x\"y\\z\n".into()),
        Datum::Bool(false),
        Datum::Int(Integer::new(true, &[1, 0])),
        Datum::Sym("a b".into()),
        Datum::Sym("1x".into()),
        Datum::Sym(String::new()),
    ]);
    let t = wr(&d);
    assert_eq!(t, r#"#(a #u8(1 2 255 0 10 99 100) "x\"y\\z\n" #f -256 |a b| |1x| ||)"#);
    assert_eq!(rd(&t).unwrap(), d);
    assert_eq!(wr(&Datum::Bytes(vec![])), "#u8()");
    assert_eq!(wr(&Datum::Str("\x01".into())), r#""\x01;""#);
}

#[test]
fn bytevector_roundtrip_all_bytes() {
    let all: Vec<u8> = (0..=255).collect();
    let mut out = Vec::new();
    write_bytevector(&all, &mut out);
    let want = format!("#u8({})", all.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(" "));
    assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
    assert_eq!(Reader::new(&out).bytevector(256).unwrap(), all);
    assert_eq!(Reader::new(&out).bytevector(255).unwrap_err().reason, "bytevector too long");
}
