//! Opening connections: accepting (within the per-address caps), dialing (from the listening
//! address), and making room under the connection bounds (`fairness` picks whom to close).

use super::conn::{Conn, Pending};
use super::fairness::{self, Candidate};
use super::limits::Source;
use super::noise::Handshake;
use super::{budget, dial, Net, NetEvent};
use crate::consts::{MAX_INBOUND_CONNECTIONS, MAX_OUTBOUND_CONNECTIONS, MIN_CONNECTIONS_PER_PEER};
use mio::{Interest, Token};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

impl Net {
    /// Whether a new connection in one direction may open, after closing one of our own idle
    /// ones if the per-peer bound or the process-wide descriptor budget asks for it.
    fn make_room(&mut self, outbound: bool, now: Instant) -> bool {
        let (mine, max) =
            if outbound { (self.outbound, MAX_OUTBOUND_CONNECTIONS) } else { (self.inbound, MAX_INBOUND_CONNECTIONS) };
        if mine >= max {
            return self.evict(outbound, now);
        }
        if budget::exhausted() {
            return self.evict(outbound, now) || mine < MIN_CONNECTIONS_PER_PEER;
        }
        true
    }

    pub(super) fn accept(&mut self, now: Instant) {
        loop {
            let (mut sock, peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A connection that died in the backlog: take the next. Out of fds: stop
                // for now rather than spin (the next connection wakes the listener again).
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => continue,
                Err(_) => return,
            };
            // Each refusal drops the socket: closed before a byte is read.
            let source = Source::of(peer.ip());
            if !self.per_source.admits(source) {
                self.defences.refused_per_ip += 1;
                continue;
            }
            if !self.make_room(false, now) {
                self.defences.refused_full += 1;
                continue; // every inbound connection is busy or protected
            }
            if sock.set_nodelay(true).is_err() {
                continue;
            }
            let id = self.next_id;
            if self
                .poll
                .registry()
                .register(&mut sock, Token(id as usize), Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            self.next_id += 1;
            let deadline = now + self.request_timeout;
            self.conns.insert(id, Box::new(Conn::accepted(id, sock, peer, deadline, now)));
            self.inbound += 1;
            self.per_source.opened(source);
            budget::opened();
            self.arm(deadline);
        }
    }

    /// Open a connection to `to` carrying the request framed in the scratch set's `enc`.
    pub(super) fn dial(
        &mut self,
        token: u64,
        to: SocketAddr,
        expected: Option<[u8; 32]>,
        deadline: Instant,
        now: Instant,
    ) {
        if !self.make_room(true, now) {
            self.deferred.push(NetEvent::Failed { token });
            return;
        }
        let id = self.next_id;
        let setup = (|| {
            let mut sock = dial::connect(self.local.ip(), to)?;
            sock.set_nodelay(true)?;
            self.poll.registry().register(&mut sock, Token(id as usize), Interest::READABLE | Interest::WRITABLE)?;
            Ok::<_, io::Error>(sock)
        })();
        let sock = match setup {
            Ok(s) => s,
            Err(_) => {
                self.deferred.push(NetEvent::Failed { token });
                return;
            }
        };
        // The handshake's first message (an X25519 key pair, and in IK two DH) only once the
        // connect is under way: a refused address costs no cryptography, and starting the
        // TCP connect first keeps the budget's eviction pattern as it was (measured: with
        // the handshake first, W1 at N = 300 made 3.7% more handshakes).
        let dial = match Handshake::dial(&self.secret, expected, &self.scratch.get().enc) {
            Ok(d) => d,
            Err(e) => {
                self.note(&e);
                let mut sock = sock;
                let _ = self.poll.registry().deregister(&mut sock);
                self.deferred.push(NetEvent::Failed { token });
                return;
            }
        };
        self.next_id += 1;
        let first = Pending { token, deadline, retry: None };
        let c = Conn::dialed(id, sock, to, dial, &self.scratch.get().enc, first, now);
        self.conns.insert(id, Box::new(c));
        self.by_addr.insert(to, id);
        self.outbound += 1;
        budget::opened();
        self.arm(deadline);
    }

    /// Close an idle connection of one direction chosen by `fairness` (for an inbound
    /// newcomer, never a recently useful one); false if there is none.
    fn evict(&mut self, outbound: bool, now: Instant) -> bool {
        let per_source = &self.per_source;
        let candidates = self.conns.values().filter(|c| c.outbound == outbound && c.is_idle()).map(|c| Candidate {
            id: c.id,
            useful: c.useful,
            last_active: c.last_active,
            from_source: if outbound { 0 } else { per_source.inbound(Source::of(c.peer.ip())) },
            unsent: c.unsent() > 0,
        });
        match fairness::victim(candidates, now, !outbound) {
            Some(id) => {
                // Idle: no request to fail.
                let mut none = Vec::new();
                self.close(id, &mut none);
                self.defences.evicted += 1;
                true
            }
            None => false,
        }
    }
}
