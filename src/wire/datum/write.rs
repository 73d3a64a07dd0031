//! The writer: R7RS `write`'s text for a datum, and the digit tables behind it.

use super::syntax::{classify, Datum, Token, CLASS, TOKEN};

/// Write `d` exactly as R7RS `write` prints it.
pub fn write_datum(d: &Datum, out: &mut Vec<u8>) {
    match d {
        Datum::Int(i) => {
            if i.negative {
                out.push(b'-');
            }
            write_uint_be(&i.magnitude, out);
        }
        Datum::Str(s) => write_escaped(s, b'"', out),
        Datum::Sym(s) => {
            if !s.is_empty()
                && s.bytes().all(|c| CLASS[c as usize] == TOKEN)
                && matches!(classify(s.as_bytes()), Ok(Token::Sym))
            {
                out.extend_from_slice(s.as_bytes());
            } else {
                write_escaped(s, b'|', out);
            }
        }
        Datum::Bool(b) => out.extend_from_slice(if *b { b"#t" } else { b"#f" }),
        Datum::Bytes(b) => write_bytevector(b, out),
        Datum::Vector(items) => {
            out.extend_from_slice(b"#(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_datum(item, out);
            }
            out.push(b')');
        }
    }
}

/// A string (`quote` `"`) or a symbol needing bars (`quote` `|`), control characters escaped.
pub(crate) fn write_escaped(s: &str, quote: u8, out: &mut Vec<u8>) {
    out.push(quote);
    for &c in s.as_bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ if c == quote => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'x', HEX[(c >> 4) as usize], HEX[(c & 15) as usize], b';']);
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
}

/// "00" to "99": two digits per division halves the dependency chain of formatting.
static DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// The digits of `v` right-aligned in `buf`; returns where they start.
fn format_u64(mut v: u64, buf: &mut [u8; 20]) -> usize {
    let mut i = buf.len();
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    }
    if v >= 10 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[v as usize * 2..v as usize * 2 + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    i
}

pub(crate) fn write_u64(v: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let i = format_u64(v, &mut buf);
    out.extend_from_slice(&buf[i..]);
}

/// A big-endian unsigned integer of any length, in decimal.
pub(crate) fn write_uint_be(bytes: &[u8], out: &mut Vec<u8>) {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = &bytes[first..];
    if bytes.len() <= 8 {
        let mut b = [0u8; 8];
        b[8 - bytes.len()..].copy_from_slice(bytes);
        return write_u64(u64::from_be_bytes(b), out);
    }
    // Little-endian 64-bit limbs, on the stack up to 512 bits (every integer the reader
    // accepts); only a larger `Integer` built in code takes the heap.
    let n = bytes.len().div_ceil(8);
    let (mut stack_limbs, mut stack_chunks) = ([0u64; 8], [0u64; 10]);
    let (mut heap_limbs, mut heap_chunks) = (Vec::new(), Vec::new());
    let (limbs, chunks): (&mut [u64], &mut [u64]) = if n <= 8 {
        (&mut stack_limbs[..n], &mut stack_chunks[..])
    } else {
        heap_limbs.resize(n, 0);
        heap_chunks.resize(2 * n, 0);
        (&mut heap_limbs, &mut heap_chunks)
    };
    for (i, chunk) in bytes.rchunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[8 - chunk.len()..].copy_from_slice(chunk);
        limbs[i] = u64::from_be_bytes(b);
    }
    // Base-10^19 digits, least significant first.
    const CHUNK: u128 = 10_000_000_000_000_000_000;
    let (mut top, mut count) = (n, 0);
    while top > 0 {
        let mut rem: u128 = 0;
        for l in limbs[..top].iter_mut().rev() {
            let cur = (rem << 64) | *l as u128;
            *l = (cur / CHUNK) as u64;
            rem = cur % CHUNK;
        }
        while top > 0 && limbs[top - 1] == 0 {
            top -= 1;
        }
        chunks[count] = rem as u64;
        count += 1;
    }
    write_u64(chunks[count - 1], out);
    for &c in chunks[..count - 1].iter().rev() {
        let mut buf = [b'0'; 20];
        format_u64(c, &mut buf);
        out.extend_from_slice(&buf[1..]);
    }
}

/// Each byte's decimal text followed by a space, padded to 4, and its used length.
static BYTE_TEXT: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, u) = ((i / 100) as u8, ((i / 10) % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b' '], 4)
        } else if i >= 10 {
            ([b'0' + d, b'0' + u, b' ', 0], 3)
        } else {
            ([b'0' + u, b' ', 0, 0], 2)
        };
        i += 1;
    }
    t
};

/// `#u8(1 2 255)`. The hot path of `set` and `value`: a table lookup and a 4-byte copy per byte.
pub(crate) fn write_bytevector(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"#u8(");
    if bytes.is_empty() {
        out.push(b')');
        return;
    }
    let start = out.len();
    out.resize(start + 4 * bytes.len(), 0);
    let buf = &mut out[start..];
    let mut i = 0;
    for &b in bytes {
        let (text, len) = &BYTE_TEXT[b as usize];
        buf[i..i + 4].copy_from_slice(text);
        i += *len as usize;
    }
    // Drop the last element's space.
    out.truncate(start + i - 1);
    out.push(b')');
}
