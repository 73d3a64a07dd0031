//! The driver of a peer on the built-in encrypted TCP transport: one thread runs the mio
//! event loop (`net`) and the protocol core, and serves the handle's commands.

use super::disk::Disk;
use super::driver::{Clients, Clock, Command, Link};
use crate::core::{Core, Transmit};
use crate::net::{Net, NetEvent};
use crossbeam_channel::Receiver;
use std::time::Duration;

/// The thread's body, until a `Stop` command or a failed poller. With `disk`, the core's
/// changes are written to the data directory (`disk` documents when).
pub(crate) fn run(mut net: Net, mut core: Core, rx: Receiver<Command>, clock: Clock, mut disk: Option<Disk>) {
    let mut clients = Clients::default();
    let mut events = Vec::new();
    let mut unused = Vec::new();
    loop {
        let now = clock.now();
        // Computed once a turn (it walks the requests in flight): anything due by the end of
        // this turn was already scheduled, since new timers start from `now`.
        let due = core.next_timeout();
        let wake = match (due, disk.as_ref().and_then(Disk::deadline)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = wake.map(|t| Duration::from_micros(t.saturating_sub(now)));
        if let Err(e) = net.poll(timeout, &mut events) {
            // The poller itself failed: nothing can be served any more.
            eprintln!("libpeer: event loop stopped: {e}");
            return;
        }
        let now = clock.now();
        while let Ok(cmd) = rx.try_recv() {
            let link = || {
                let (bytes_sent, bytes_received) = net.bytes();
                let handshakes = net.handshakes();
                Link { open_connections: net.open_connections(), bytes_sent, bytes_received, handshakes }
            };
            if !clients.command(&mut core, now, cmd, link, &mut unused) {
                if let Some(d) = &mut disk {
                    if let Err(e) = d.close(&mut core, clock.now()) {
                        log::error!("cannot save the data directory: {e}");
                    }
                }
                return;
            }
        }
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
        if let Some(d) = &mut disk {
            if let Err(e) = d.after_turn(&mut core, clock.now()) {
                // Serving goes on; what is not saved is lost at a restart, and we say so once.
                log::error!("data directory disabled after a write failed: {e}");
                disk = None;
            }
        }
        clients.deliver(&mut core);
    }
}
