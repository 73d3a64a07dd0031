//! Where a `Net`'s sockets are registered and how their readiness reaches it. A `Net` made by
//! `Net::new` owns a mio `Poll` and waits on it itself (`Net::poll`). One made by
//! `Net::shared` registers with the registry of an event loop that many peers share
//! (`node::pool`): the loop waits, hands each `Net` the readiness of its own sockets
//! (`Net::process`) and runs it again by its `Net::deadline`.
//!
//! Tokens: the low `TOKEN_BITS` bits of a mio token name a socket within its `Net` (the
//! listener, the waker, a connection's id); a shared loop puts the peer's slot above them,
//! so one poll's events can be sent to their peers by a shift.

use mio::event::Event;
use mio::{Events, Poll, Registry, Token, Waker};
use std::io;
use std::sync::Arc;

/// Bits of a token that are the `Net`'s own: 48 on 64-bit targets, which connection ids never
/// reach; a shared loop has the remaining 16 for its peers' slots. (On a 32-bit target, 24:
/// a shared `Net` that opened 16 million connections would confuse their tokens.)
pub const TOKEN_BITS: u32 = usize::BITS * 3 / 4;
const LOCAL_MASK: usize = (1 << TOKEN_BITS) - 1;

pub(super) const LISTENER: usize = 0;
pub(super) const WAKER: usize = 1;

/// Readiness events taken per wait by a `Net`'s own poll. mio is edge-triggered: events past
/// this stay queued in the kernel and the next wait returns them at once, so a small buffer
/// costs only an extra wait under heavy load.
const EVENTS_PER_WAIT: usize = 64;

/// One readiness event: a socket (its whole token) and what it is ready for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub token: usize,
    pub readable: bool,
    pub writable: bool,
}

impl Ready {
    /// A closed or failed socket counts as both readable and writable, so the read or the
    /// write that follows sees the error.
    pub fn of(ev: &Event) -> Ready {
        Ready {
            token: ev.token().0,
            readable: ev.is_readable() || ev.is_read_closed() || ev.is_error(),
            writable: ev.is_writable() || ev.is_write_closed() || ev.is_error(),
        }
    }

    /// The socket's token within its `Net`.
    pub(super) fn local(&self) -> usize {
        self.token & LOCAL_MASK
    }
}

pub(super) enum Poller {
    /// `Net::new`: a poll of its own.
    Own { poll: Poll, events: Events, waker: Arc<Waker> },
    /// `Net::shared`: a shared loop's registry, its waker, and this `Net`'s slot bits.
    Shared { registry: Arc<Registry>, waker: Arc<Waker>, base: usize },
}

impl Poller {
    pub fn own() -> io::Result<Poller> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), Token(WAKER))?);
        Ok(Poller::Own { poll, events: Events::with_capacity(EVENTS_PER_WAIT), waker })
    }

    pub fn registry(&self) -> &Registry {
        match self {
            Poller::Own { poll, .. } => poll.registry(),
            Poller::Shared { registry, .. } => registry,
        }
    }

    pub fn waker(&self) -> Arc<Waker> {
        match self {
            Poller::Own { waker, .. } | Poller::Shared { waker, .. } => waker.clone(),
        }
    }

    /// The whole token of this `Net`'s socket `local`.
    pub fn token(&self, local: usize) -> Token {
        match self {
            Poller::Own { .. } => Token(local & LOCAL_MASK),
            Poller::Shared { base, .. } => Token(base | (local & LOCAL_MASK)),
        }
    }
}
