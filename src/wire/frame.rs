//! Length-prefixed framing (PROTOCOL.md §2): a 4-byte big-endian length of at most
//! `MAX_MESSAGE`, then that many bytes of datum text. This is the crate's one framing code:
//! `net` frames every request and reply with it, and tests/wire_props.rs tests it.
//!
//! Decoding is incremental and costs no copy in the common case: whole frames inside a
//! received chunk go to the caller in place, and only an incomplete frame at the chunk's end
//! is buffered. A declared length over `MAX_MESSAGE` fails as soon as its 4 header bytes are
//! in, before any body byte is kept, and the buffer of an incomplete frame grows with the
//! bytes that arrived (doubling from a small start, capped at the frame's size), so a peer
//! announcing 1 MiB and sending one byte costs little. Between frames the decoder holds no
//! heap memory.

use crate::consts::MAX_MESSAGE;
use std::fmt;

/// Bytes of a frame's length prefix.
pub const HEADER_LEN: usize = 4;

/// First allocation for an incomplete frame; later growth doubles.
const FIRST_CAPACITY: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// A frame of this many bytes, more than `MAX_MESSAGE` (declared by a peer, or being written).
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

/// Append one frame to `out`, its body written by `body` straight after the length prefix
/// (no copy). A body over `MAX_MESSAGE` is an error, and `out` is left as it was.
pub fn write_frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    body(out);
    let len = out.len() - start - HEADER_LEN;
    if len > MAX_MESSAGE {
        out.truncate(start);
        return Err(FrameError::TooLarge(len));
    }
    out[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// The body length a complete header declares, refused past `MAX_MESSAGE`.
fn declared(header: &[u8]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_MESSAGE {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Make room for `need` bytes, doubling from `FIRST_CAPACITY` but never past `limit` (the
/// whole frame), so what is allocated stays within twice what arrived.
fn grow(buf: &mut Vec<u8>, need: usize, limit: usize) {
    if buf.capacity() < need {
        let target = need.max(2 * buf.capacity()).max(FIRST_CAPACITY).min(limit);
        buf.reserve_exact(target - buf.len());
    }
}

/// Splits a byte stream, fed in chunks of any size, into frame bodies.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// An incomplete frame, header included; empty and unallocated between frames.
    partial: Vec<u8>,
}

impl FrameDecoder {
    pub const fn new() -> FrameDecoder {
        FrameDecoder { partial: Vec::new() }
    }

    /// Take in the next chunk of the stream, calling `on_frame` with each body it completes,
    /// in order. Bodies wholly inside `data` are passed in place. The first error, an
    /// oversized length or one returned by `on_frame`, stops the call; the stream is then out
    /// of step for good and its connection must be closed.
    pub fn push<E: From<FrameError>>(
        &mut self,
        mut data: &[u8],
        mut on_frame: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.partial.is_empty() {
            data = self.complete(data, &mut on_frame)?;
        }
        while data.len() >= HEADER_LEN {
            let end = HEADER_LEN + declared(data)?;
            let Some(body) = data.get(HEADER_LEN..end) else {
                break;
            };
            on_frame(body)?;
            data = &data[end..];
        }
        if !data.is_empty() {
            // An incomplete frame (its length, if whole, was checked above): keep it.
            let limit = if data.len() >= HEADER_LEN { HEADER_LEN + declared(data)? } else { HEADER_LEN };
            grow(&mut self.partial, data.len(), limit);
            self.partial.extend_from_slice(data);
        }
        Ok(())
    }

    /// Continue the buffered frame with `data`; hand it over and free it once whole.
    /// Returns the rest of `data` (empty if the frame is still incomplete).
    fn complete<'d, E: From<FrameError>>(
        &mut self,
        mut data: &'d [u8],
        on_frame: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<&'d [u8], E> {
        let p = &mut self.partial;
        if p.len() < HEADER_LEN {
            let take = (HEADER_LEN - p.len()).min(data.len());
            p.extend_from_slice(&data[..take]);
            data = &data[take..];
            if p.len() < HEADER_LEN {
                return Ok(data);
            }
        }
        let want = match declared(p) {
            Ok(len) => HEADER_LEN + len,
            Err(e) => {
                *p = Vec::new();
                return Err(e.into());
            }
        };
        let take = (want - p.len()).min(data.len());
        grow(p, p.len() + take, want);
        p.extend_from_slice(&data[..take]);
        if p.len() == want {
            // Taken, and freed after the call: an idle stream holds no buffer.
            let frame = std::mem::take(p);
            on_frame(&frame[HEADER_LEN..])?;
        }
        Ok(&data[take..])
    }

    /// Bytes of an incomplete frame held, header included.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Heap bytes held for an incomplete frame.
    pub fn capacity(&self) -> usize {
        self.partial.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in bodies {
            write_frame(&mut out, |o| o.extend_from_slice(b)).unwrap();
        }
        out
    }

    fn push_all(d: &mut FrameDecoder, data: &[u8], got: &mut Vec<Vec<u8>>) -> Result<(), FrameError> {
        d.push(data, |b| {
            got.push(b.to_vec());
            Ok(())
        })
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
                    push_all(&mut d, part, &mut got).unwrap();
                }
                assert_eq!(got, bodies, "split at {i},{j}");
                assert_eq!((d.buffered(), d.capacity()), (0, 0));
            }
        }
    }

    /// Whole frames are passed as slices of the chunk itself, and nothing is allocated.
    #[test]
    fn whole_frames_are_passed_in_place() {
        let s = stream(&[b"#t".to_vec(), vec![5; 1000], b"#f".to_vec()]);
        let range = s.as_ptr_range();
        let mut d = FrameDecoder::new();
        let mut n = 0;
        d.push(&s, |b| {
            assert!(range.contains(&b.as_ptr()));
            n += 1;
            Ok::<(), FrameError>(())
        })
        .unwrap();
        assert_eq!((n, d.capacity()), (3, 0));
    }

    #[test]
    fn oversized_fails_at_the_header() {
        let header = ((MAX_MESSAGE + 1) as u32).to_be_bytes();
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        push_all(&mut d, &header[..3], &mut got).unwrap();
        assert_eq!(push_all(&mut d, &header[3..], &mut got), Err(FrameError::TooLarge(MAX_MESSAGE + 1)));
        assert_eq!((d.buffered(), d.capacity()), (0, 0));
        let mut d = FrameDecoder::new();
        let mut data = u32::MAX.to_be_bytes().to_vec();
        data.extend_from_slice(&[b'x'; 1000]);
        assert_eq!(push_all(&mut d, &data, &mut got), Err(FrameError::TooLarge(u32::MAX as usize)));
        assert_eq!((d.buffered(), d.capacity()), (0, 0));
        assert!(got.is_empty());
        // Exactly MAX_MESSAGE is allowed: the body is then awaited.
        let mut d = FrameDecoder::new();
        push_all(&mut d, &(MAX_MESSAGE as u32).to_be_bytes(), &mut got).unwrap();
        assert_eq!(d.buffered(), HEADER_LEN);
    }

    #[test]
    fn largest_frame_and_memory() {
        let body = vec![7u8; MAX_MESSAGE];
        let s = stream(std::slice::from_ref(&body));
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        push_all(&mut d, &s[..5], &mut got).unwrap();
        assert!(d.capacity() <= FIRST_CAPACITY);
        for chunk in s[5..].chunks(16 * 1024) {
            push_all(&mut d, chunk, &mut got).unwrap();
            assert!(d.capacity() <= (2 * d.buffered()).max(FIRST_CAPACITY), "{} for {}", d.capacity(), d.buffered());
            assert!(d.capacity() <= HEADER_LEN + MAX_MESSAGE);
        }
        assert_eq!(got, vec![body]);
        assert_eq!((d.capacity(), d.buffered()), (0, 0));
    }

    #[test]
    fn writer_refuses_oversized_bodies() {
        let mut out = b"kept".to_vec();
        assert_eq!(
            write_frame(&mut out, |o| o.resize(o.len() + MAX_MESSAGE + 1, b'x')),
            Err(FrameError::TooLarge(MAX_MESSAGE + 1))
        );
        assert_eq!(out, b"kept");
        write_frame(&mut out, |o| o.resize(o.len() + MAX_MESSAGE, b'x')).unwrap();
        assert_eq!(out.len(), 4 + HEADER_LEN + MAX_MESSAGE);
        assert_eq!(&out[4..8], &(MAX_MESSAGE as u32).to_be_bytes());
    }

    /// An error from the caller stops the call at that frame.
    #[test]
    fn caller_errors_stop_the_stream() {
        let s = stream(&[b"a".to_vec(), b"b".to_vec()]);
        let mut d = FrameDecoder::new();
        let mut n = 0;
        let r = d.push(&s, |_| {
            n += 1;
            Err(FrameError::TooLarge(0))
        });
        assert!(r.is_err());
        assert_eq!(n, 1);
    }
}
