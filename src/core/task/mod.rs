//! Operations as tasks: one type per kind of operation, each owning its state and its
//! result. The core starts a task, hands it the replies and failures of the requests it
//! sent, and lets it look again as time passes (a slow request stops holding a lookup slot);
//! the task answers `Progress::Done` once, with the operation's result.
//!
//! | task | operations | shape |
//! |---|---|---|
//! | `connect::Connect` | connect | one `iam` to an address |
//! | `find::Find` | find nodes | one lookup |
//! | `bootstrap::Bootstrap` | bootstrap | a lookup of our uid, then of every far bucket |
//! | `store::Store` | set, bag publish, namespace set | lookup, then store at the nearest |
//! | `fetch::Fetch` | ref, namespace ref | lookup that reads as it goes |
//! | `bags::BagQuery` | bag popular/recent/sample | lookup, then ask the nearest, merge |
//! | `at::At` | the `_at` queries | find one uid, then ask it |
//!
//! A task trusts or distrusts the contacts that answer it (`Cx::trust`, `Cx::distrust`):
//! only it knows whether an answer was the one asked for. A request that fails has its
//! contact forgotten by the core before the task hears of it.

pub(crate) mod at;
pub(crate) mod bags;
pub(crate) mod bootstrap;
pub(crate) mod connect;
pub(crate) mod fetch;
pub(crate) mod find;
mod shared;
pub(crate) mod store;


pub(crate) use shared::{Cx, Progress, Task};
