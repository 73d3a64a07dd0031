//! What each fuzz target runs on one input, and the properties it checks (docs/FUZZING.md).
//! A broken property panics, which libFuzzer reports as a crash. The targets of the
//! connection layer (`accept`, `transport`) live in the library itself
//! (`peer::net::fuzzing`), next to the private code they drive.

use peer::consts::MAX_MESSAGE;
use peer::wire::codec::{decode_message, normalize};
use peer::wire::datum::{read_datum, write_datum};
use peer::wire::frame::{write_frame, FrameDecoder, FrameError, HEADER_LEN};
use peer::wire::{decode_envelope, decode_reply, decode_request, encode_reply, encode_request, Message};

/// The datum reader: what it reads, the writer writes as text that reads back the same and
/// is its own normal form.
pub fn datum(data: &[u8]) {
    let Ok(d) = read_datum(data) else {
        assert!(normalize(data).is_err());
        return;
    };
    let mut text = Vec::new();
    write_datum(&d, &mut text);
    assert_eq!(read_datum(&text).as_ref(), Ok(&d), "{}", String::from_utf8_lossy(&text));
    assert_eq!(normalize(data).as_ref(), Ok(&text));
    assert_eq!(normalize(&text).as_ref(), Ok(&text));
}

/// The frame decoder, fed `data[1..]` in pieces of `data[0]^2` bytes (all at once for 0):
/// it hands over the bodies an independent reading of the stream finds, in place or
/// reassembled, fails exactly where a header announces more than `MAX_MESSAGE`, and keeps
/// at most twice what it buffers (512 bytes at first) for an incomplete frame.
pub fn frame(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let piece = if cut == 0 { stream.len().max(1) } else { cut as usize * cut as usize };
    let (want, fails, tail) = split_frames(stream);
    let mut d = FrameDecoder::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut result = Ok(());
    for part in stream.chunks(piece) {
        result = d.push(part, |body| {
            got.push(body.to_vec());
            Ok::<(), FrameError>(())
        });
        let cap = d.capacity();
        assert!(cap <= (2 * d.buffered()).max(512), "{cap} bytes held for {} buffered", d.buffered());
        assert!(cap <= HEADER_LEN + MAX_MESSAGE);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(got, want);
    assert_eq!(result.is_err(), fails, "{result:?}");
    if !fails {
        assert_eq!(d.buffered(), tail);
        // The bodies framed again are the stream's whole frames.
        let mut again = Vec::new();
        for b in &got {
            write_frame(&mut again, |o| o.extend_from_slice(b)).expect("a body read is within bounds");
        }
        assert_eq!(again, stream[..stream.len() - tail]);
    }
}

/// The stream's whole frame bodies, whether it fails (a header over `MAX_MESSAGE`), and the
/// bytes of its incomplete tail.
fn split_frames(mut s: &[u8]) -> (Vec<Vec<u8>>, bool, usize) {
    let mut bodies = Vec::new();
    while s.len() >= 4 {
        let len = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
        if len > MAX_MESSAGE {
            return (bodies, true, 0);
        }
        if s.len() < 4 + len {
            break;
        }
        bodies.push(s[4..4 + len].to_vec());
        s = &s[4 + len..];
    }
    (bodies, false, s.len())
}

/// The message decoder as a server reads requests: what decodes is written back as text
/// that decodes the same and is its own normal form; it reads as a datum; wrapped in an
/// envelope of the program-supplied transport it decodes the same.
pub fn request(data: &[u8]) {
    let Ok(r) = decode_request(data) else {
        return;
    };
    let mut text = Vec::new();
    encode_request(&r, &mut text);
    assert_eq!(decode_request(&text).as_ref(), Ok(&r), "{}", String::from_utf8_lossy(&text));
    common(data, &text, &Message::Request(r));
}

/// The message decoder as a dialer reads replies; the same properties as `request`.
pub fn reply(data: &[u8]) {
    let Ok(r) = decode_reply(data) else {
        return;
    };
    let mut text = Vec::new();
    encode_reply(&r, &mut text);
    assert_eq!(decode_reply(&text).as_ref(), Ok(&r), "{}", String::from_utf8_lossy(&text));
    common(data, &text, &Message::Reply(r));
}

/// `data` decoded as `m`, whose encoding is `text`.
fn common(data: &[u8], text: &[u8], m: &Message) {
    assert_eq!(decode_message(data).as_ref(), Ok(m));
    assert!(read_datum(data).is_ok(), "a message that is not a datum");
    assert_eq!(normalize(text).as_deref(), Ok(text), "the encoder's text is not canonical");
    let mut env = b"#(from \"127.0.0.1\" 7 ".to_vec();
    env.extend_from_slice(data);
    env.push(b')');
    assert_eq!(decode_envelope(&env).map(|(_, m)| m).as_ref(), Ok(m));
}
