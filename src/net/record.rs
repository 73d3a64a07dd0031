//! Records (PROTOCOL.md §3): each direction of a connection is a sequence of records, a u16
//! big-endian length then that many bytes, each holding one Noise message (the dialer's
//! first also holds the pattern byte).

use super::event::ConnError;

/// Bytes of a record's length prefix.
pub(super) const HEADER_LEN: usize = 2;
/// Largest record body. Noise allows 65535-byte messages; like TLS we cut the stream into
/// 16 KiB pieces, so the scratch buffers and a connection's partial record stay small, at
/// the cost of one 16-byte tag per 16 KiB.
pub(super) const MAX_RECORD: usize = 16 * 1024 + 128;
/// Plaintext carried by one transport message.
pub(super) const MAX_CHUNK: usize = 16 * 1024;

/// A record header's length, refused past `MAX_RECORD` before any of the body is kept.
pub(super) fn record_len(header: &[u8]) -> Result<usize, ConnError> {
    let len = u16::from_be_bytes([header[0], header[1]]) as usize;
    if len > MAX_RECORD {
        return Err(ConnError::Protocol("record longer than the maximum"));
    }
    Ok(len)
}

/// `buf` holds a `body_len`-byte body after room for the header: write the header and
/// return the whole record.
pub(super) fn finish(buf: &mut [u8], body_len: usize) -> &[u8] {
    debug_assert!(body_len <= MAX_RECORD);
    buf[..HEADER_LEN].copy_from_slice(&(body_len as u16).to_be_bytes());
    &buf[..HEADER_LEN + body_len]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Record headers longer than the maximum are refused before the body arrives.
    #[test]
    fn record_length_bounded() {
        assert_eq!(record_len(&(MAX_RECORD as u16).to_be_bytes()).unwrap(), MAX_RECORD);
        assert!(record_len(&((MAX_RECORD + 1) as u16).to_be_bytes()).is_err());
    }

    #[test]
    fn finish_writes_the_length() {
        let mut buf = [0u8, 0, 7, 8, 9];
        assert_eq!(finish(&mut buf, 3), &[0, 3, 7, 8, 9]);
    }
}
