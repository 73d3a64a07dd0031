//! The driver of a peer on the built-in encrypted TCP transport: its `Net` (registered with a
//! shared event loop, `pool`) and its protocol core, and the handle's commands. Each turn of
//! the loop that concerns it: the transport's readiness, commands, the transport's events
//! to the core, the core's timers, its transmits, the data directory, the answers.

use super::disk::Disk;
use super::driver::{Clients, Clock, Link};
use super::mailbox::{Drained, Mailbox};
use super::pool::{Hosted, Turn};
use crate::core::{Core, Transmit};
use crate::net::{Net, NetEvent, Ready};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct TcpPeer {
    net: Net,
    core: Core,
    mailbox: Arc<Mailbox>,
    clock: Clock,
    /// With a data directory, the core's changes are written there (`disk` documents when).
    disk: Option<Disk>,
    clients: Clients,
    /// The core's next timeout, computed once a turn (it walks the requests in flight):
    /// anything due by the end of the next turn is already scheduled, since new timers start
    /// from that turn's `now`.
    due: Option<u64>,
}

impl TcpPeer {
    pub fn new(net: Net, core: Core, mailbox: Arc<Mailbox>, clock: Clock, disk: Option<Disk>) -> TcpPeer {
        let due = core.next_timeout();
        TcpPeer { net, core, mailbox, clock, disk, clients: Clients::default(), due }
    }

    /// Save the data directory before the peer is dropped.
    fn stop(&mut self) -> Turn {
        if let Some(d) = &mut self.disk {
            if let Err(e) = d.close(&mut self.core, self.clock.now()) {
                log::error!("cannot save the data directory: {e}");
            }
        }
        Turn::Stop
    }
}

impl Hosted for TcpPeer {
    fn attach(&mut self, base: usize) -> io::Result<()> {
        self.net.register(base)
    }

    fn turn(&mut self, ready: &[Ready], events: &mut Vec<NetEvent>) -> Turn {
        let TcpPeer { net, core, mailbox, clock, disk, clients, due } = self;
        net.process(ready.iter().copied(), events);
        let now = clock.now();
        let mut unused = Vec::new();
        let left = match mailbox.drain(|cmd| {
            let link = || {
                let (bytes_sent, bytes_received) = net.bytes();
                let handshakes = net.handshakes();
                Link { open_connections: net.open_connections(), bytes_sent, bytes_received, handshakes }
            };
            clients.command(core, now, cmd, link, &mut unused)
        }) {
            Drained::Empty => Turn::Done,
            Drained::More => Turn::More,
            Drained::Stopped => return self.stop(),
        };
        for ev in events.drain(..) {
            match ev {
                NetEvent::Reply { token, reply, remote_static } => {
                    core.handle_reply(now, token, Some((reply, remote_static)))
                }
                NetEvent::Failed { token } => core.handle_reply(now, token, None),
                NetEvent::Request { conn, from, remote_static, request } => {
                    let reply = core.handle_request(now, from, remote_static, request);
                    net.send_reply(conn, &reply);
                }
            }
        }
        if due.is_some_and(|t| t <= now) {
            core.handle_timeout(now);
        }
        while let Some(Transmit { token, to, expected_static, request, contact }) = core.poll_transmit() {
            net.send_request_marked(token, to, expected_static, &request, contact);
        }
        for (addr, contact) in core.take_contact_changes() {
            net.mark_contact(addr, contact);
        }
        // Before the answers: a store that succeeded is on disk when its caller hears of it.
        if let Some(d) = disk {
            if let Err(e) = d.after_turn(core, clock.now()) {
                // Serving goes on; what is not saved is lost at a restart, and we say so once.
                log::error!("data directory disabled after a write failed: {e}");
                *disk = None;
            }
        }
        clients.deliver(core);
        *due = core.next_timeout();
        left
    }

    fn wake_at(&self) -> Instant {
        let at = |t: u64| {
            let now = self.clock.now();
            Instant::now() + Duration::from_micros(t.saturating_sub(now))
        };
        let core = match (self.due, self.disk.as_ref().and_then(Disk::deadline)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let net = self.net.deadline();
        core.map_or(net, |t| at(t).min(net))
    }
}
