//! The program-supplied transport: an external peer's envelopes in (peer_ext_push) and out
//! (peer_ext_pop), and the diagnostic text normalizer (peer_wire_normalize). The envelope
//! `#(from "ip" port MESSAGE)` is the program-supplied transport's (PROTOCOL.md §8); the
//! message texts and their canonical form are PROTOCOL.md §2 and §4.

use super::support::{check_out, guard, leak_bytes, node, null, read_slice, write_ip};
use super::types::{peer, Fail};
use crate::error::Error;
use crate::status::Status;
use std::ffi::{c_char, c_int};
use std::time::Duration;

/// Hand an external peer one envelope that arrived for it: the `len` bytes at `envelope`
/// (read; the caller keeps ownership), the datum text `#(from "ip" port MESSAGE)` where
/// ip:port is the sender's address on the program's network.
/// Returns 0 accepted; -1 p or envelope is NULL; -4 peer is closed; -10 the envelope or its
/// message is malformed; -2 the peer is not an external one.
#[no_mangle]
pub unsafe extern "C" fn peer_ext_push(p: *mut peer, envelope: *const u8, len: usize) -> c_int {
    guard("peer_ext_push", || {
        let n = node(p)?;
        if envelope.is_null() {
            return Err(null("envelope"));
        }
        let bytes = unsafe { read_slice(envelope, len, "envelope") }?;
        n.ext_push_envelope(bytes)?;
        Ok(Status::Ok)
    })
}

/// Take the next envelope an external peer wants sent, waiting at most `timeout_ms`. On 0:
/// the destination's IP text, NUL-terminated, is written to `ip_out` (caller-owned,
/// PEER_IP_BUF_LEN = 64 bytes), its port to `*port_out`, and `*envelope_out` receives a
/// libpeer-allocated buffer of `*len_out` bytes (the datum text `#(from "ip" port MESSAGE)`,
/// from = this peer) that the caller delivers to that address and then releases with
/// peer_bytes_free(*envelope_out, *len_out).
/// Returns 0 got one; 1 none within timeout_ms (nothing written); -1 an argument is NULL;
/// -4 peer is closed; -2 the peer is not an external one.
#[no_mangle]
pub unsafe extern "C" fn peer_ext_pop(
    p: *mut peer,
    timeout_ms: u32,
    ip_out: *mut c_char,
    port_out: *mut u16,
    envelope_out: *mut *mut u8,
    len_out: *mut usize,
) -> c_int {
    guard("peer_ext_pop", || {
        let n = node(p)?;
        check_out(ip_out, "ip_out")?;
        check_out(port_out, "port_out")?;
        check_out(envelope_out, "envelope_out")?;
        check_out(len_out, "len_out")?;
        let Some((to, bytes)) = n.ext_pop_envelope(Duration::from_millis(timeout_ms.into()))? else {
            return Ok(Status::NotFound);
        };
        // The address first: nothing is leaked when it cannot be written.
        unsafe { write_ip(ip_out, to.ip()) }?;
        let (b, len) = leak_bytes(bytes);
        unsafe {
            *port_out = to.port();
            *envelope_out = b;
            *len_out = len;
        }
        Ok(Status::Ok)
    })
}

/// Diagnostic: read one message text (the `len` bytes at `text`, read) with libpeer's safe
/// reader and write it back in libpeer's canonical text. On 0 `*out` receives a
/// libpeer-allocated, NUL-terminated buffer of `*len_out` bytes plus the NUL; release it with
/// peer_bytes_free(*out, *len_out + 1).
/// Returns 0 ok; -1 text (with len > 0), out or len_out is NULL; -10 unreadable.
#[no_mangle]
pub unsafe extern "C" fn peer_wire_normalize(
    text: *const u8,
    len: usize,
    out: *mut *mut u8,
    len_out: *mut usize,
) -> c_int {
    guard("peer_wire_normalize", || {
        let text = unsafe { read_slice(text, len, "text") }?;
        check_out(out, "out")?;
        check_out(len_out, "len_out")?;
        let mut canon = crate::wire::codec::normalize(text).map_err(|e| Fail::from(Error::Malformed(e.to_string())))?;
        let n = canon.len();
        canon.push(0);
        let (b, _) = leak_bytes(canon);
        unsafe {
            *out = b;
            *len_out = n;
        }
        Ok(Status::Ok)
    })
}
