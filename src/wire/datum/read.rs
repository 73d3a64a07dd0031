//! The safe reader (PROTOCOL.md §2): `Reader`, the cursor the message codec parses with, and
//! `read_datum` on top of it, with the fast path for canonically written bytevectors.

use super::syntax::{
    classify, ends_token, int_limbs, is_ws, limbs_to_be, Datum, Integer, Limbs, ReadError, Token, CLASS, TOKEN,
};
use crate::consts::{MAX_DATUM_DEPTH, MAX_DATUM_ELEMENTS};

/// Read exactly one datum; only whitespace may follow it.
pub fn read_datum(text: &[u8]) -> Result<Datum, ReadError> {
    let mut r = Reader::new(text);
    let d = r.datum()?;
    r.finish()?;
    Ok(d)
}

// ---- the reader --------------------------------------------------------------------------

/// A cursor over one text. Every method skips leading whitespace itself.
pub(crate) struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

/// What the next datum is, judged from its first characters.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum Next {
    End,
    Close,
    Bool,
    Other,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Reader<'a> {
        Reader { s, pos: 0, depth: 0 }
    }

    pub(crate) fn err(&self, reason: &'static str) -> ReadError {
        ReadError { reason, offset: self.pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && is_ws(self.s[self.pos]) {
            self.pos += 1;
        }
    }

    /// Only whitespace may remain.
    pub(crate) fn finish(&mut self) -> Result<(), ReadError> {
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(self.err("trailing garbage after the datum"));
        }
        Ok(())
    }

    pub(crate) fn peek(&mut self) -> Next {
        self.skip_ws();
        match self.s.get(self.pos) {
            None => Next::End,
            Some(b')') => Next::Close,
            Some(b'#') if matches!(self.s.get(self.pos + 1), Some(b't' | b'f')) => Next::Bool,
            Some(_) => Next::Other,
        }
    }

    fn enter(&mut self) -> Result<(), ReadError> {
        if self.depth >= MAX_DATUM_DEPTH {
            return Err(self.err("datum nested too deeply"));
        }
        self.depth += 1;
        Ok(())
    }

    /// Consume `#(`.
    pub(crate) fn open_vector(&mut self) -> Result<(), ReadError> {
        self.skip_ws();
        if !self.s[self.pos..].starts_with(b"#(") {
            return Err(self.err("expected a vector"));
        }
        self.enter()?;
        self.pos += 2;
        Ok(())
    }

    /// Consume the `)` closing the current vector, if it is next.
    pub(crate) fn try_close(&mut self) -> Result<bool, ReadError> {
        self.skip_ws();
        match self.s.get(self.pos) {
            Some(b')') => {
                self.pos += 1;
                self.depth = self.depth.saturating_sub(1);
                Ok(true)
            }
            None => Err(self.err("unterminated vector")),
            Some(_) => Ok(false),
        }
    }

    pub(crate) fn close(&mut self) -> Result<(), ReadError> {
        if self.try_close()? {
            Ok(())
        } else {
            Err(self.err("unexpected extra element"))
        }
    }

    /// A maximal run of token characters, which must end at a delimiter or the end.
    fn token(&mut self) -> Result<&'a [u8], ReadError> {
        self.skip_ws();
        let start = self.pos;
        // A radix-prefixed integer (`#x1F`) is one token.
        if self.s.get(self.pos) == Some(&b'#')
            && matches!(self.s.get(self.pos + 1), Some(b'x' | b'X' | b'd' | b'D' | b'o' | b'O' | b'b' | b'B'))
        {
            self.pos += 2;
        }
        while self.pos < self.s.len() && CLASS[self.s[self.pos] as usize] == TOKEN {
            self.pos += 1;
        }
        if self.pos < self.s.len() && !ends_token(self.s[self.pos]) {
            return Err(self.err("unexpected character"));
        }
        if self.pos == start {
            return Err(self.err(match self.s.get(start) {
                None => "unexpected end of input",
                Some(b')') => "unexpected ')'",
                Some(_) => "unexpected character",
            }));
        }
        Ok(&self.s[start..self.pos])
    }

    /// A bare symbol (message tags).
    pub(crate) fn symbol(&mut self) -> Result<&'a str, ReadError> {
        self.skip_ws();
        let start = self.pos;
        let tok = self.token().map_err(|_| ReadError { reason: "expected a symbol", offset: start })?;
        match classify(tok) {
            // Token characters are ASCII.
            Ok(Token::Sym) => Ok(std::str::from_utf8(tok).unwrap_or("")),
            _ => Err(ReadError { reason: "expected a symbol", offset: start }),
        }
    }

    /// A non-negative exact integer below 2^320.
    fn uint_limbs(&mut self) -> Result<Limbs, ReadError> {
        self.skip_ws();
        let start = self.pos;
        let tok = self.token()?;
        match classify(tok) {
            Ok(Token::Int { negative, digits_at, radix }) => {
                let limbs = int_limbs(&tok[digits_at..], radix);
                if negative && limbs != [0; 5] {
                    return Err(ReadError { reason: "negative integer", offset: start });
                }
                Ok(limbs)
            }
            Ok(Token::Sym) => Err(ReadError { reason: "expected an integer", offset: start }),
            Err(reason) => Err(ReadError { reason, offset: start }),
        }
    }

    /// A 32-byte identifier written as a non-negative integer below 2^256.
    pub(crate) fn id(&mut self) -> Result<[u8; 32], ReadError> {
        let start = self.pos;
        let limbs = self.uint_limbs()?;
        if limbs[4] != 0 {
            return Err(ReadError { reason: "identifier not below 2^256", offset: start });
        }
        let be = limbs_to_be(&limbs);
        Ok(be[8..].try_into().expect("32 bytes"))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ReadError> {
        let start = self.pos;
        let limbs = self.uint_limbs()?;
        if limbs[1..] != [0; 4] {
            return Err(ReadError { reason: "integer too large", offset: start });
        }
        Ok(limbs[0])
    }

    pub(crate) fn uint_max(&mut self, max: u64) -> Result<u64, ReadError> {
        let start = self.pos;
        let v = self.u64()?;
        if v > max {
            return Err(ReadError { reason: "integer out of range", offset: start });
        }
        Ok(v)
    }

    /// `#t`, `#f`, `#true`, `#false`.
    pub(crate) fn boolean(&mut self) -> Result<bool, ReadError> {
        self.skip_ws();
        let start = self.pos;
        if self.s.get(self.pos) != Some(&b'#') {
            return Err(self.err("expected a boolean"));
        }
        self.pos += 1;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
            self.pos += 1;
        }
        let v = match &self.s[start + 1..self.pos] {
            b"t" | b"true" => true,
            b"f" | b"false" => false,
            _ => return Err(ReadError { reason: "unsupported # syntax", offset: start }),
        };
        if self.pos < self.s.len() && !ends_token(self.s[self.pos]) {
            return Err(self.err("unexpected character"));
        }
        Ok(v)
    }

    /// A string literal `"..."` with R7RS escapes.
    pub(crate) fn string(&mut self) -> Result<String, ReadError> {
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b'"') {
            return Err(self.err("expected a string"));
        }
        self.quoted(b'"')
    }

    /// The body of `"..."` or `|...|`; `pos` is at the opening quote.
    fn quoted(&mut self, quote: u8) -> Result<String, ReadError> {
        let s = self.s;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while self.pos < s.len() && s[self.pos] != quote && s[self.pos] != b'\\' {
                self.pos += 1;
            }
            if self.pos >= s.len() {
                return Err(self.err("unterminated string or symbol"));
            }
            // Runs are split only at ASCII bytes, so each run is whole UTF-8 on its own.
            match std::str::from_utf8(&s[run..self.pos]) {
                Ok(t) => out.push_str(t),
                Err(e) => return Err(ReadError { reason: "invalid UTF-8", offset: run + e.valid_up_to() }),
            }
            if s[self.pos] == quote {
                self.pos += 1;
                return Ok(out);
            }
            self.pos += 1;
            let c = match s.get(self.pos) {
                None => return Err(self.err("unterminated string or symbol")),
                Some(&c) => c,
            };
            self.pos += 1;
            match c {
                b'n' => out.push('\n'),
                b't' => out.push('\t'),
                b'r' => out.push('\r'),
                b'a' => out.push('\x07'),
                b'b' => out.push('\x08'),
                b'"' | b'\\' | b'|' => out.push(c as char),
                b'x' | b'X' => out.push(self.hex_escape()?),
                b' ' | b'\t' | b'\n' | b'\r' => {
                    // Line continuation: \ <spaces> newline <spaces> stands for nothing.
                    self.pos -= 1;
                    self.line_continuation()?;
                }
                _ => return Err(self.err("unknown escape in string")),
            }
        }
    }

    fn hex_escape(&mut self) -> Result<char, ReadError> {
        let start = self.pos;
        let mut v: u32 = 0;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_hexdigit() {
            if self.pos - start == 6 {
                return Err(self.err("bad \\x escape"));
            }
            v = v * 16 + (self.s[self.pos] as char).to_digit(16).unwrap_or(0);
            self.pos += 1;
        }
        if self.pos == start || self.s.get(self.pos) != Some(&b';') {
            return Err(self.err("bad \\x escape"));
        }
        self.pos += 1;
        char::from_u32(v).ok_or(ReadError { reason: "bad \\x escape", offset: start })
    }

    fn line_continuation(&mut self) -> Result<(), ReadError> {
        let s = self.s;
        while self.pos < s.len() && matches!(s[self.pos], b' ' | b'\t') {
            self.pos += 1;
        }
        match s.get(self.pos) {
            Some(b'\n') => self.pos += 1,
            Some(b'\r') => {
                self.pos += 1;
                if s.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("unknown escape in string")),
        }
        while self.pos < s.len() && matches!(s[self.pos], b' ' | b'\t') {
            self.pos += 1;
        }
        Ok(())
    }

    /// `#u8(...)` or `#vu8(...)` of at most `max` elements, each 0..=255.
    /// Reserves for up to `max` elements at once (as far as the text allows): meant for the
    /// one value of a message. `datum()` reserves little, as it may meet many bytevectors.
    pub(crate) fn bytevector(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::new();
        self.bytevector_into(max, max, &mut out)?;
        Ok(out)
    }

    /// A bytevector of exactly `N` bytes.
    pub(crate) fn bytes_exact<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        self.skip_ws();
        let start = self.pos;
        let v = self.bytevector(N)?;
        <[u8; N]>::try_from(v.as_slice())
            .map_err(|_| ReadError { reason: "bytevector has the wrong length", offset: start })
    }

    fn bytevector_into(&mut self, max: usize, guess: usize, out: &mut Vec<u8>) -> Result<(), ReadError> {
        self.skip_ws();
        let s = self.s;
        let rest = &s[self.pos..];
        if rest.starts_with(b"#u8(") {
            self.pos += 4;
        } else if rest.starts_with(b"#vu8(") {
            self.pos += 5;
        } else {
            return Err(self.err("expected a bytevector"));
        }
        if self.depth >= MAX_DATUM_DEPTH {
            return Err(self.err("datum nested too deeply"));
        }
        let max = max.min(MAX_DATUM_ELEMENTS);
        // Each element takes at least two characters.
        out.reserve(((s.len() - self.pos) / 2).min(max).min(guess));
        let mut pos = self.pos;
        loop {
            pos = canonical_run(s, pos, out, max);
            while pos < s.len() && is_ws(s[pos]) {
                pos += 1;
            }
            if pos >= s.len() {
                self.pos = pos;
                return Err(self.err("unterminated bytevector"));
            }
            if s[pos] == b')' {
                self.pos = pos + 1;
                return Ok(());
            }
            if out.len() == max {
                self.pos = pos;
                return Err(self.err("bytevector too long"));
            }
            // One plain element of one to three digits; the bulk went through `canonical_run`.
            let start = pos;
            let mut v: u32 = 0;
            while pos < s.len() && pos - start < 3 && s[pos].is_ascii_digit() {
                v = v * 10 + (s[pos] - b'0') as u32;
                pos += 1;
            }
            if pos > start && v <= 255 && (pos == s.len() || ends_token(s[pos])) {
                out.push(v as u8);
                continue;
            }
            // Anything else (`+7`, `0042`, `256`, junk) takes the general integer path.
            self.pos = start;
            let tok = self.token()?;
            let limbs = match classify(tok) {
                Ok(Token::Int { negative, digits_at, radix }) => {
                    let l = int_limbs(&tok[digits_at..], radix);
                    if negative && l != [0; 5] {
                        [u64::MAX; 5]
                    } else {
                        l
                    }
                }
                _ => return Err(ReadError { reason: "bytevector element is not an integer", offset: start }),
            };
            if limbs[1..] != [0; 4] || limbs[0] > 255 {
                return Err(ReadError { reason: "bytevector element out of 0..=255", offset: start });
            }
            out.push(limbs[0] as u8);
            pos = self.pos;
        }
    }

    /// An integer or a bare symbol.
    fn atom(&mut self) -> Result<Datum, ReadError> {
        let start = self.pos;
        let tok = self.token()?;
        match classify(tok) {
            Ok(Token::Sym) => Ok(Datum::Sym(String::from_utf8_lossy(tok).into_owned())),
            Ok(Token::Int { negative, digits_at, radix }) => {
                let be = limbs_to_be(&int_limbs(&tok[digits_at..], radix));
                Ok(Datum::Int(Integer::new(negative, &be)))
            }
            Err(reason) => Err(ReadError { reason, offset: start }),
        }
    }

    /// Any datum of the subset.
    pub(crate) fn datum(&mut self) -> Result<Datum, ReadError> {
        self.skip_ws();
        let s = self.s;
        let c = match s.get(self.pos) {
            None => return Err(self.err("unexpected end of input")),
            Some(&c) => c,
        };
        match c {
            b'#' => match s.get(self.pos + 1) {
                Some(b'(') => {
                    self.open_vector()?;
                    let mut items = Vec::new();
                    while !self.try_close()? {
                        if items.len() == MAX_DATUM_ELEMENTS {
                            return Err(self.err("vector too long"));
                        }
                        items.push(self.datum()?);
                    }
                    Ok(Datum::Vector(items))
                }
                Some(b'u' | b'v') => {
                    // A small first guess, then doubling: reserving for the rest of the text
                    // would make `#(#u8() #u8() ...)` cost quadratic memory.
                    let mut out = Vec::new();
                    self.bytevector_into(usize::MAX, 64, &mut out)?;
                    Ok(Datum::Bytes(out))
                }
                Some(b'x' | b'X' | b'd' | b'D' | b'o' | b'O' | b'b' | b'B') => self.atom(),
                _ => Ok(Datum::Bool(self.boolean()?)),
            },
            b'"' => Ok(Datum::Str(self.quoted(b'"')?)),
            b'|' => Ok(Datum::Sym(self.quoted(b'|')?)),
            b'(' => Err(self.err("lists are not accepted")),
            _ => self.atom(),
        }
    }
}

/// The hot path of reading `set` and `value`: consume elements written canonically (1 to 3
/// digits, each followed by exactly one space) eight bytes at a time, finding digits and spaces
/// with bit tricks, so no branch depends on how many digits a byte took. Stops, returning where
/// the next element starts, at anything else (`)`, other whitespace, `0042`, 256, junk), which
/// the general loop then handles.
fn canonical_run(s: &[u8], start: usize, out: &mut Vec<u8>, max: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // An element's digits may be read up to 3 bytes back; `#u8(` guarantees 4 bytes of room.
    if start < 4 {
        return start;
    }
    let mut elem = start;
    let mut at = start;
    while let Some(word) = s.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let ascii = !w & HI;
        let w7 = w & LOW7;
        let digit = (w7 + 0x50 * ONES) & !(w7 + 0x46 * ONES) & ascii;
        let x = w ^ (0x20 * ONES);
        let space = !(((x & LOW7) + LOW7) | x) & HI;
        let bad = !(digit | space) & HI;
        // Only spaces before the first bad byte end elements we may take.
        let mut spaces = if bad == 0 { space } else { space & ((bad & bad.wrapping_neg()) - 1) };
        while spaces != 0 {
            let p = at + (spaces.trailing_zeros() / 8) as usize;
            spaces &= spaces - 1;
            let len = p - elem;
            if len.wrapping_sub(1) > 2 || out.len() == max {
                return elem;
            }
            // The three bytes before the space; those before the element are masked off.
            let t = u32::from_le_bytes(s[p - 3..p + 1].try_into().expect("4 bytes"));
            let d = |k: u32| ((t >> (8 * (3 - k))) as u8).wrapping_sub(b'0') as u32;
            let v = d(1) + 10 * d(2) * (len >= 2) as u32 + 100 * d(3) * (len >= 3) as u32;
            if v > 255 {
                return elem;
            }
            out.push(v as u8);
            elem = p + 1;
        }
        if bad != 0 {
            return elem;
        }
        at += 8;
    }
    elem
}

#[cfg(test)]
mod tests;
