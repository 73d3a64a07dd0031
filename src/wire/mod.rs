//! The wire (PROTOCOL.md §2, §4, §8): the safe datum reader and writer (`datum`), the typed
//! messages (`message`) and their text (`codec`), and length-prefixed framing (`frame`).

pub mod codec;
pub mod datum;
pub mod frame;
mod message;

pub use codec::{decode_envelope, decode_reply, decode_request, encode_envelope, encode_reply, encode_request, Message};
pub use message::{BagEntry, BagKind, NamespaceRecord, Reply, Request};
