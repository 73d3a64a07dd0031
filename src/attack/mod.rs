//! A hostile peer and the attacks of issue 13 (feature `sim`: for the tests and `peer-bench`).
//!
//! Everything here speaks the wire as an outsider would, from PROTOCOL.md alone: its own
//! records, Noise handshakes (with `snow`) and frames, never the `net` layer's code, so a
//! mistake there cannot hide the same mistake here.
//!
//! | module | owns |
//! |---|---|
//! | `socket` | TCP sockets bound to a chosen source address before they connect |
//! | `session` | an open Noise session over a blocking socket: records, the plaintext stream, frames |
//! | `client` | `Hostile`, the dialing side: handshake (XX), requests, raw and malformed input |

pub mod client;
pub mod session;
mod socket;

pub use client::Hostile;
