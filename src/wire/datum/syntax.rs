//! What the reader and the writer share: the datum type, exact integers, the reader's error,
//! the character classes of tokens, and decimal/radix digit conversion.

use crate::consts::MAX_INTEGER_DIGITS;
use std::fmt;

/// One datum of the wire's subset of Scheme.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Datum {
    Int(Integer),
    Str(String),
    Sym(String),
    Bool(bool),
    Bytes(Vec<u8>),
    Vector(Vec<Datum>),
}

/// An exact integer: sign and minimal big-endian magnitude (zero is empty and never negative),
/// so derived equality is numeric equality.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Integer {
    pub(super) negative: bool,
    pub(super) magnitude: Vec<u8>,
}

impl Integer {
    pub fn new(negative: bool, magnitude_be: &[u8]) -> Integer {
        let first = magnitude_be.iter().position(|&b| b != 0).unwrap_or(magnitude_be.len());
        let magnitude = magnitude_be[first..].to_vec();
        Integer { negative: negative && !magnitude.is_empty(), magnitude }
    }
    pub fn from_u64(v: u64) -> Integer {
        Integer::new(false, &v.to_be_bytes())
    }
    pub fn is_negative(&self) -> bool {
        self.negative
    }
    /// Minimal big-endian magnitude (empty for zero).
    pub fn magnitude(&self) -> &[u8] {
        &self.magnitude
    }
    pub fn to_u64(&self) -> Option<u64> {
        self.to_be_array::<8>().map(u64::from_be_bytes)
    }
    /// The value as exactly `N` big-endian bytes, if non-negative and below 2^(8N).
    pub fn to_be_array<const N: usize>(&self) -> Option<[u8; N]> {
        if self.negative || self.magnitude.len() > N {
            return None;
        }
        let mut out = [0u8; N];
        out[N - self.magnitude.len()..].copy_from_slice(&self.magnitude);
        Some(out)
    }
}

/// Why a text was refused, and the byte offset where the reader noticed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadError {
    pub reason: &'static str,
    pub offset: usize,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.offset)
    }
}

impl std::error::Error for ReadError {}

// ---- character classes -------------------------------------------------------------------

pub(super) const OTHER: u8 = 0;
pub(super) const WS: u8 = 1;
pub(super) const DELIM: u8 = 2;
/// Characters of numbers and of conservative bare symbols.
pub(super) const TOKEN: u8 = 3;

pub(super) static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => WS,
            b'(' | b')' | b'"' | b';' | b'|' => DELIM,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => TOKEN,
            b'!' | b'$' | b'%' | b'&' | b'*' | b'/' | b':' | b'<' | b'=' | b'>' | b'?' => TOKEN,
            b'^' | b'_' | b'~' | b'+' | b'-' | b'.' | b'@' => TOKEN,
            _ => OTHER,
        };
        i += 1;
    }
    t
};

#[inline]
pub(super) fn is_ws(c: u8) -> bool {
    CLASS[c as usize] == WS
}

#[inline]
pub(super) fn ends_token(c: u8) -> bool {
    matches!(CLASS[c as usize], WS | DELIM)
}

pub(super) enum Token {
    /// Digits start at `digits_at`, in base `radix` (10, or 16/8/2 after `#x`/`#o`/`#b`).
    Int {
        negative: bool,
        digits_at: usize,
        radix: u32,
    },
    Sym,
}

/// Hex digits of a radix-prefixed integer: 16^66 = 2^264 < 10^80, so every integer read
/// has at most `MAX_INTEGER_DIGITS` decimal digits and its written (decimal) text reads back
/// (80 hex digits would be up to 97 decimal ones). Octal and binary digits are worth fewer
/// decimal ones and keep the decimal bound; a uid in hex takes 64.
const MAX_HEX_DIGITS: usize = 66;

/// Numbers are digits with an optional sign; bare symbols start with a letter or
/// `!$%&*/:<=>?^_~`, or are one of `+ - ...`. Everything else (`1.5`, `+i`, `.5`) is refused.
pub(super) fn classify(tok: &[u8]) -> Result<Token, &'static str> {
    // A radix prefix, as some Schemes' `write` prints bytevector elements (`#x1F`).
    if tok[0] == b'#' {
        let radix = match tok.get(1) {
            Some(b'x' | b'X') => 16,
            Some(b'd' | b'D') => 10,
            Some(b'o' | b'O') => 8,
            Some(b'b' | b'B') => 2,
            _ => return Err("unsupported # syntax"),
        };
        let signed = matches!(tok.get(2), Some(b'+' | b'-'));
        let at = 2 + signed as usize;
        if at >= tok.len() || !tok[at..].iter().all(|&c| (c as char).is_digit(radix)) {
            return Err("not an exact integer");
        }
        if tok.len() - at > if radix == 16 { MAX_HEX_DIGITS } else { MAX_INTEGER_DIGITS } {
            return Err("integer has too many digits");
        }
        return Ok(Token::Int { negative: tok.get(2) == Some(&b'-'), digits_at: at, radix });
    }
    let signed = matches!(tok[0], b'+' | b'-');
    if tok[0].is_ascii_digit() || (signed && tok.len() > 1 && tok[1].is_ascii_digit()) {
        let at = signed as usize;
        if !tok[at..].iter().all(u8::is_ascii_digit) {
            return Err("not an exact integer");
        }
        if tok.len() - at > MAX_INTEGER_DIGITS {
            return Err("integer has too many digits");
        }
        return Ok(Token::Int { negative: tok[0] == b'-', digits_at: at, radix: 10 });
    }
    match tok {
        b"+" | b"-" | b"..." => Ok(Token::Sym),
        _ if matches!(tok[0], b'+' | b'-' | b'.' | b'@') => Err("unsupported symbol or number syntax"),
        _ => Ok(Token::Sym),
    }
}

/// 10^80 < 2^320: five little-endian 64-bit limbs hold any integer the reader accepts.
pub(super) type Limbs = [u64; 5];

/// The value of validated digits in `radix`; at most MAX_INTEGER_DIGITS of them, so even
/// 80 hex digits (320 bits) fit the limbs.
pub(super) fn int_limbs(digits: &[u8], radix: u32) -> Limbs {
    if radix == 10 {
        return digits_to_limbs(digits);
    }
    let mut l: Limbs = [0; 5];
    for &c in digits {
        let mut carry = (c as char).to_digit(radix).unwrap_or(0) as u128;
        for limb in l.iter_mut() {
            let v = *limb as u128 * radix as u128 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    l
}

/// Eight ASCII digits at once, the first (most significant) in the lowest byte: combine
/// neighbouring pairs, then quads, then the two halves.
pub(super) fn parse8(d: [u8; 8]) -> u64 {
    let v = u64::from_le_bytes(d).wrapping_sub(0x3030_3030_3030_3030);
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_ffff_0000_ffff;
    (v.wrapping_mul(10_000) + (v >> 32)) & 0xffff_ffff
}

pub(super) fn digits_to_limbs(digits: &[u8]) -> Limbs {
    let mut limbs = [0u64; 5];
    for chunk in digits.chunks(19) {
        let mut v = 0u64;
        let mut eights = chunk.chunks_exact(8);
        for e in &mut eights {
            v = v * 100_000_000 + parse8(e.try_into().expect("8 digits"));
        }
        for &c in eights.remainder() {
            v = v * 10 + (c - b'0') as u64;
        }
        let mut carry = v as u128;
        let m = 10u64.pow(chunk.len() as u32) as u128;
        for l in limbs.iter_mut() {
            let t = *l as u128 * m + carry;
            *l = t as u64;
            carry = t >> 64;
        }
    }
    limbs
}

pub(super) fn limbs_to_be(limbs: &Limbs) -> [u8; 40] {
    let mut out = [0u8; 40];
    for (i, l) in limbs.iter().enumerate() {
        out[32 - 8 * i..40 - 8 * i].copy_from_slice(&l.to_be_bytes());
    }
    out
}
