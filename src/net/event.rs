//! What the transport reports: events for its caller, and the error that closes a
//! connection. A leaf: every other module of `net` may use it.

use crate::wire::frame::FrameError;
use crate::wire::{Reply, Request};
use std::net::SocketAddr;
use std::{fmt, io};

pub type ConnId = u64;

#[derive(Debug)]
pub enum NetEvent {
    /// Reply to the request sent with `token`; `remote_static` = responder's authenticated Noise static key.
    Reply { token: u64, reply: Reply, remote_static: [u8; 32] },
    /// The request sent with `token` failed (connect refused, handshake failed, wrong static key,
    /// connection closed or reset, malformed reply, no reply within 5 s).
    Failed { token: u64 },
    /// A request arrived on an inbound connection. The loop answers it immediately with send_reply
    /// (so replies leave in arrival order, FIFO, as PROTOCOL.md §3 requires).
    Request { conn: ConnId, from: SocketAddr, remote_static: [u8; 32], request: Request },
}

/// Why a connection is being closed.
#[derive(Debug)]
pub(super) enum ConnError {
    Io(io::Error),
    Noise(snow::Error),
    Protocol(&'static str),
    /// The peer closed the connection.
    Closed,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "I/O: {}", e),
            ConnError::Noise(e) => write!(f, "Noise: {}", e),
            ConnError::Protocol(s) => f.write_str(s),
            ConnError::Closed => f.write_str("closed by peer"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

impl From<snow::Error> for ConnError {
    fn from(e: snow::Error) -> Self {
        ConnError::Noise(e)
    }
}

impl From<FrameError> for ConnError {
    fn from(_: FrameError) -> Self {
        ConnError::Protocol("frame longer than 1 MiB")
    }
}
