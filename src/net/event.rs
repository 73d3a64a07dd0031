//! What the transport reports: events for its caller, counts of its defences, and the error
//! that closes a connection. A leaf: every other module of `net` may use it.

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

/// How often each transport defence acted so far (diagnostics and tests).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Defences {
    /// Inbound connections closed at accept: their address was at a per-address cap.
    pub refused_per_ip: u64,
    /// Inbound connections closed at accept: no room, and no idle connection could make it.
    pub refused_full: u64,
    /// Idle connections closed to make room for another.
    pub evicted: u64,
    /// Times an accepting connection stopped reading because its replies were not read.
    pub paused: u64,
    /// Connections closed: unsent replies past `OUTPUT_CLOSE_BYTES`, or not moving for a
    /// request timeout.
    pub closed_output: u64,
    /// Connections closed to bring the unsent replies back within `OUTPUT_BUDGET_BYTES`.
    pub closed_output_budget: u64,
    /// Connections closed to bring partial input back within `PARTIAL_INPUT_BUDGET_BYTES`.
    pub closed_input_budget: u64,
    /// Requests sent again on a new connection after a reused one closed under them.
    pub retried: u64,
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

impl ConnError {
    /// The peer closed the connection (end of stream, reset, broken pipe).
    pub fn peer_closed(&self) -> bool {
        match self {
            ConnError::Closed => true,
            ConnError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }
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
