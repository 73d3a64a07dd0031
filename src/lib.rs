//! libpeer: a Kademlia-style peer-to-peer network over encrypted TCP, with content-addressed
//! values, bags and signed namespaces. See README.md and ../shared/SPEC.md.
//!
//! Module map: `wire` (datum codec, framing), `id` (identifiers, XOR metric), `routing`
//! (buckets), `lookup` (iterative query state), `store` (what a peer keeps), `core` (the pure
//! protocol state machine), `net` (mio event loop, Noise connections), `ext` (a
//! program-supplied transport), `node` (the blocking API), `ffi` (the C boundary).

pub mod consts;
pub mod core;
pub mod error;
pub mod ffi;
pub mod id;
pub mod lookup;
pub mod net;
pub mod node;
pub mod routing;
pub mod sign;
pub mod sim;
pub mod status;
pub mod store;
pub mod wire;

pub use consts::MAX_VALUE_SIZE;
pub use error::{Error, Result};
pub use id::{Contact, Id};
pub use node::{Node, Stats};
pub use wire::BagKind;
