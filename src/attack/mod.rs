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
//! | `listener` | the accepting side (XX and IK) answering as a behaviour decides: Sybils |
//! | `testnet` | honest peers over several /24s of loopback, the target, the victim, near ids |
//! | `ctx` | what an attack is given (deadline, abort flag, counters) and pacing |
//! | `unread`, `partial`, `iam_flood`, `sybil`, `storage`, `churn` | the six attacks |
//! | `workload` | the honest operations and their tallies |
//! | `measure` | memory sampling with a watchdog; the attacker's share of honest tables |
//! | `scenario` | one attack measured before, during and after |
//! | `report` | an attack's figures as a table |

pub mod churn;
pub mod client;
pub mod ctx;
pub mod iam_flood;
pub mod listener;
pub mod measure;
pub mod partial;
pub mod report;
pub mod scenario;
pub mod session;
mod socket;
pub mod storage;
pub mod sybil;
pub mod testnet;
pub mod unread;
pub mod workload;

pub use client::Hostile;
pub use ctx::Params;
pub use scenario::{run, Kind, Outcome, Setup};
