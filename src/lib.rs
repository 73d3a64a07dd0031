//! libpeer: a Kademlia-style peer-to-peer network over encrypted TCP, with content-addressed
//! values, bags and signed namespaces. `docs/PROTOCOL.md` describes the protocol, README.md
//! the decisions and the C and Scheme interfaces.
//!
//! The Rust API is [`Node`], a blocking handle to a peer running on one of the process's
//! shared event-loop threads:
//!
//! ```no_run
//! use peer::{Id, Node};
//! let a = Node::new(Id::random(&mut rand::rngs::OsRng), "127.0.0.1".parse().unwrap(), 0, 5)?;
//! let b = Node::new(Id::random(&mut rand::rngs::OsRng), "127.0.0.1".parse().unwrap(), 0, 5)?;
//! b.connect(a.addr().ip(), a.port())?;
//! let key = b.set(b"hello")?;
//! assert_eq!(a.get(&key)?.as_deref(), Some(&b"hello"[..]));
//! # Ok::<(), peer::Error>(())
//! ```
//!
//! Module map, each depending only on those above it:
//!
//! | module | owns |
//! |---|---|
//! | `consts`, `diversity`, `error`, `id`, `sign` | limits, address diversity, errors and status codes, identifiers, namespace signatures |
//! | `wire` | the datum reader/writer, messages and their text, framing |
//! | `store` | what a peer holds for others: values, bags, namespace records |
//! | `core` | the protocol as a pure state machine: routing, lookups, tasks, serving |
//! | `net` | the mio event loop: TCP connections, Noise, records |
//! | `node` | the blocking API, the shared event loops, the two drivers (TCP, program-supplied transport) |
//! | `ffi` | the C ABI and nothing else |
//! | `sim` | many cores on a virtual clock (feature `sim`, for tests and the benchmark) |
//!
//! With the `sim` feature the internal layers (`core`, `net`, `store`, `wire`, `ffi`) are
//! public too, for the tests and `peer-bench`; they carry no stability promise.

#![deny(missing_docs)]

pub mod consts;
mod diversity;
mod error;
mod id;
mod node;
pub mod sign;
pub mod status;

/// The internal layers: public only with the `sim` feature (tests and the benchmark).
macro_rules! internal {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "sim")]
        #[doc(hidden)]
        pub mod $name;
        // Without the feature, what only the simulator and the tests reach is unused.
        #[cfg(not(feature = "sim"))]
        #[allow(dead_code)]
        mod $name;
    )*};
}
internal!(core, ffi, net, persist, store, wire);

#[cfg(feature = "sim")]
#[doc(hidden)]
pub mod sim;

// A hostile peer and the attacks of issue 13, for the tests and peer-bench.
#[cfg(feature = "sim")]
#[doc(hidden)]
pub mod attack;

pub use consts::{MAX_EXTERNAL_VALUE_SIZE, MAX_VALUE_SIZE};
pub use diversity::Diversity;
pub use error::{Error, Result};
pub use id::{Contact, Id};
pub use node::{Node, Options, Stats};
pub use wire::BagKind;
