//! The program-supplied transport (PROTOCOL.md §8): a peer with no sockets whose messages
//! the program moves. Each message travels as an envelope, the text
//! `#(from "ip" port MESSAGE)`, where ip:port is the sender's address on the program's
//! network. The program hands what arrives to `Node::ext_push_envelope` and delivers what
//! `Node::ext_pop_envelope` gives. Nothing here is encrypted: the program's transport is
//! trusted, and bag publishers are told apart by address.

use super::driver::{Clients, Clock, Command, Link};
use super::mailbox::{Drained, Mailbox};
use super::pool::{Hosted, Turn};
use crate::consts::MAX_EXT_OUTSTANDING;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::net::{NetEvent, Ready};
use crate::wire::{decode_envelope, encode_envelope, encode_reply, encode_request, Message};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// With no timer of the core's, the loop still looks at the peer this often.
const MAX_IDLE: Duration = Duration::from_secs(3600);

/// What the peer wants sent: (destination, envelope), in order.
pub(crate) struct Outbox(pub Receiver<(SocketAddr, Vec<u8>)>);

impl Outbox {
    /// The next envelope to deliver and where, waiting at most `timeout`.
    pub fn pop(&self, timeout: Duration) -> Result<Option<(SocketAddr, Vec<u8>)>> {
        match self.0.recv_timeout(timeout) {
            Ok(m) => Ok(Some(m)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }
}

/// The command for one envelope that arrived.
pub(crate) fn incoming(envelope: &[u8]) -> Result<Command> {
    let (from, msg) = decode_envelope(envelope).map_err(|e| Error::Malformed(e.to_string()))?;
    Ok(Command::Incoming(from, msg))
}

/// A peer on the program's transport, hosted by an event loop (`pool`) like a TCP peer, with
/// no sockets: what arrives is a command, what leaves goes to its outbox.
pub(crate) struct ExternalPeer {
    core: Core,
    mailbox: Arc<Mailbox>,
    out: Sender<(SocketAddr, Vec<u8>)>,
    me: SocketAddr,
    clock: Clock,
    clients: Clients,
    /// Replies carry no request id: they come back in request order per address
    /// (PROTOCOL.md §3), so each address keeps the tokens of its outstanding requests in order.
    outstanding: HashMap<SocketAddr, VecDeque<u64>>,
    /// The core's next timeout, computed once a turn (as `tcp::TcpPeer::due`).
    due: Option<u64>,
}

impl ExternalPeer {
    pub fn new(
        core: Core,
        mailbox: Arc<Mailbox>,
        out: Sender<(SocketAddr, Vec<u8>)>,
        me: SocketAddr,
        clock: Clock,
    ) -> Self {
        let due = core.next_timeout();
        ExternalPeer { core, mailbox, out, me, clock, clients: Clients::default(), outstanding: HashMap::new(), due }
    }

    fn envelope(&self, msg: &[u8]) -> Vec<u8> {
        let mut e = Vec::with_capacity(msg.len() + 40);
        encode_envelope(self.me, msg, &mut e);
        e
    }
}

impl Hosted for ExternalPeer {
    fn attach(&mut self, _base: usize) -> io::Result<()> {
        Ok(()) // no sockets
    }

    fn turn(&mut self, _ready: &[Ready], _events: &mut Vec<NetEvent>) -> Turn {
        let now = self.clock.now();
        let mut arrived = Vec::new();
        let (clients, core) = (&mut self.clients, &mut self.core);
        let left = match self.mailbox.drain(|cmd| clients.command(core, now, cmd, Link::default, &mut arrived)) {
            Drained::Empty => Turn::Done,
            Drained::More => Turn::More,
            Drained::Stopped => return Turn::Stop,
        };
        let mut buf = Vec::new();
        for (from, msg) in arrived {
            match msg {
                Message::Request(req) => {
                    let reply = self.core.handle_request(now, from, [0; 32], req);
                    buf.clear();
                    encode_reply(&reply, &mut buf);
                    let _ = self.out.send((from, self.envelope(&buf)));
                }
                Message::Reply(reply) => {
                    if let Some(q) = self.outstanding.get_mut(&from) {
                        if let Some(token) = q.pop_front() {
                            self.core.handle_reply(now, token, Some((reply, [0; 32])));
                        }
                        if q.is_empty() {
                            self.outstanding.remove(&from);
                        }
                    }
                }
            }
        }
        if self.due.is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        // Connections are the program's business: routing-table changes concern none here.
        drop(self.core.take_contact_changes());
        while let Some(t) = self.core.poll_transmit() {
            buf.clear();
            encode_request(&t.request, &mut buf);
            let q = self.outstanding.entry(t.to).or_default();
            // A destination that never answers must not grow this without bound: tokens
            // this old were failed by the core's request timeout long ago.
            if q.len() >= MAX_EXT_OUTSTANDING {
                q.pop_front();
            }
            q.push_back(t.token);
            let _ = self.out.send((t.to, self.envelope(&buf)));
        }
        self.clients.deliver(&mut self.core);
        self.due = self.core.next_timeout();
        left
    }

    fn wake_at(&self) -> Instant {
        let now = self.clock.now();
        let wait = self.due.map_or(MAX_IDLE, |t| Duration::from_micros(t.saturating_sub(now)).min(MAX_IDLE));
        Instant::now() + wait
    }
}

#[cfg(test)]
mod tests {
    use super::super::Node;
    use crate::consts::MAX_EXTERNAL_VALUE_SIZE;
    use crate::id::Id;
    use crate::wire::{encode_envelope, encode_request, Request};
    use std::net::SocketAddr;
    use std::time::Duration;

    /// The reply text to one `set` of `len` bytes pushed from 127.0.0.1:9.
    fn set_reply(n: &Node, len: usize) -> String {
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (mut msg, mut env) = (Vec::new(), Vec::new());
        encode_request(&Request::Set { value: vec![255; len].into(), lifetime: None }, &mut msg);
        encode_envelope(from, &msg, &mut env);
        n.ext_push_envelope(&env).unwrap();
        let (to, reply) = n.ext_pop_envelope(Duration::from_secs(5)).unwrap().expect("a reply");
        assert_eq!(to, from);
        String::from_utf8(reply).unwrap()
    }

    /// A peer on the program's transport stores nothing it could not send back within 1 MiB.
    #[test]
    fn refuses_values_past_the_external_limit() {
        let n = Node::new_external(Id([9; 32]), Some("127.0.0.1:4000".parse().unwrap()), 5).unwrap();
        assert_eq!(n.max_value(), MAX_EXTERNAL_VALUE_SIZE);
        assert!(set_reply(&n, MAX_EXTERNAL_VALUE_SIZE + 1).ends_with("#f)"));
        assert!(set_reply(&n, MAX_EXTERNAL_VALUE_SIZE).ends_with("#t)"));
        assert!(n.set(&vec![0; MAX_EXTERNAL_VALUE_SIZE + 1]).is_err());
    }
}
