//! Length-prefixed framing (SPEC 2): a 4-byte big-endian length, then that many bytes.
//!
//! The decoder checks a declared length the moment its 4 header bytes are complete, so an
//! oversized frame fails before any of its body is kept, and a body buffer grows with the
//! bytes actually received rather than with the length a peer claims.

use crate::consts::MAX_MESSAGE;
use std::collections::VecDeque;
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// A frame declared this many bytes, more than `MAX_MESSAGE`.
    TooLarge(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds the {MAX_MESSAGE}-byte maximum"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for crate::Error {
    fn from(e: FrameError) -> crate::Error {
        crate::Error::Malformed(e.to_string())
    }
}

/// Append one frame. `body` must be at most `MAX_MESSAGE` bytes (the peer would refuse more).
pub fn write_frame(body: &[u8], out: &mut Vec<u8>) {
    debug_assert!(body.len() <= MAX_MESSAGE, "frame body of {} bytes", body.len());
    out.reserve(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// First allocation for a body; later growth doubles, capped at the declared length, so a
/// peer that announces 1 MiB and sends nothing costs little.
const FIRST_BODY_CHUNK: usize = 16 * 1024;

/// Incremental frame parser fed with whatever chunks the socket returns.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    header: [u8; 4],
    header_len: usize,
    /// Declared length of the body being received, if its header is complete.
    want: Option<usize>,
    body: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Take in received bytes. After an error the rest of the stream is ignored; the error
    /// comes out of `next_frame` (or `failed`). Frames completed by one call are queued.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.failed.is_none() {
            match self.want {
                None => {
                    let take = (4 - self.header_len).min(bytes.len());
                    self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
                    self.header_len += take;
                    bytes = &bytes[take..];
                    if self.header_len == 4 {
                        self.header_len = 0;
                        let len = u32::from_be_bytes(self.header) as usize;
                        if len > MAX_MESSAGE {
                            self.failed = Some(FrameError::TooLarge(len));
                            self.ready = VecDeque::new();
                        } else if len == 0 {
                            self.ready.push_back(Vec::new());
                        } else {
                            self.want = Some(len);
                            self.body = Vec::with_capacity(len.min(FIRST_BODY_CHUNK));
                        }
                    }
                }
                Some(len) => {
                    let take = (len - self.body.len()).min(bytes.len());
                    let need = self.body.len() + take;
                    if self.body.capacity() < need {
                        let target = (self.body.capacity() * 2).max(need).min(len);
                        self.body.reserve_exact(target - self.body.len());
                    }
                    self.body.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.body.len() == len {
                        // Taking the buffer leaves nothing allocated between frames.
                        self.ready.push_back(std::mem::take(&mut self.body));
                        self.want = None;
                    }
                }
            }
        }
    }

    /// The next complete body, `None` if more bytes are needed, or the stream's error (which
    /// repeats: the connection must be closed).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let frame = self.ready.pop_front();
        if self.ready.is_empty() && self.ready.capacity() > 16 {
            self.ready = VecDeque::new();
        }
        Ok(frame)
    }

    /// The error the stream hit, if any: lets a caller close right after `push`.
    pub fn failed(&self) -> Option<FrameError> {
        self.failed
    }

    /// Bytes held: a partial header, a partial body and complete bodies not yet taken.
    pub fn buffered(&self) -> usize {
        self.header_len + self.body.len() + self.ready.iter().map(Vec::len).sum::<usize>()
    }

    /// Bytes allocated for the body in progress (for memory tests).
    pub fn capacity(&self) -> usize {
        self.body.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in bodies {
            write_frame(b, &mut out);
        }
        out
    }

    fn drain(d: &mut FrameDecoder, got: &mut Vec<Vec<u8>>) {
        while let Some(f) = d.next_frame().unwrap() {
            got.push(f);
        }
    }

    #[test]
    fn split_at_every_position() {
        let bodies = vec![b"#t".to_vec(), Vec::new(), (0..300u32).map(|i| i as u8).collect(), b"#(iam 1 #f)".to_vec()];
        let s = stream(&bodies);
        for i in 0..=s.len() {
            for j in i..=s.len() {
                let mut d = FrameDecoder::new();
                let mut got = Vec::new();
                for part in [&s[..i], &s[i..j], &s[j..]] {
                    d.push(part);
                    drain(&mut d, &mut got);
                }
                assert_eq!(got, bodies, "split at {i},{j}");
                assert_eq!(d.buffered(), 0);
            }
        }
    }

    #[test]
    fn oversized_fails_at_the_header() {
        let mut d = FrameDecoder::new();
        d.push(&((MAX_MESSAGE + 1) as u32).to_be_bytes()[..3]);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&[((MAX_MESSAGE + 1) & 0xff) as u8]);
        assert_eq!(d.failed(), Some(FrameError::TooLarge(MAX_MESSAGE + 1)));
        d.push(&[b'x'; 1000]);
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.capacity(), 0);
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge(MAX_MESSAGE + 1)));
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge(MAX_MESSAGE + 1)));
        let mut d = FrameDecoder::new();
        d.push(&u32::MAX.to_be_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge(u32::MAX as usize)));
    }

    #[test]
    fn largest_frame_and_memory() {
        let body = vec![7u8; MAX_MESSAGE];
        let s = stream(std::slice::from_ref(&body));
        let mut d = FrameDecoder::new();
        d.push(&s[..4]);
        assert!(d.failed().is_none());
        assert!(d.capacity() <= FIRST_BODY_CHUNK);
        let mut got = Vec::new();
        for chunk in s[4..].chunks(65536) {
            d.push(chunk);
            assert!(d.capacity() <= MAX_MESSAGE);
            drain(&mut d, &mut got);
        }
        assert_eq!(got, vec![body]);
        assert_eq!((d.capacity(), d.buffered()), (0, 0));
    }
}
