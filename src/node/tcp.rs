//! The driver of a peer on the built-in encrypted TCP transport: one thread runs the mio
//! event loop (`net`) and the protocol core, and serves the handle's commands.

use super::driver::{micros, Clients, Command};
use crate::core::{Core, Transmit};
use crate::net::{Net, NetEvent};
use crossbeam_channel::Receiver;
use std::time::{Duration, Instant};

/// The thread's body, until a `Stop` command or a failed poller.
pub(crate) fn run(mut net: Net, mut core: Core, rx: Receiver<Command>, start: Instant) {
    let mut clients = Clients::default();
    let mut events = Vec::new();
    let mut unused = Vec::new();
    loop {
        let now = micros(start);
        // Computed once a turn (it walks the requests in flight): anything due by the end of
        // this turn was already scheduled, since new timers start from `now`.
        let due = core.next_timeout();
        let timeout = due.map(|t| Duration::from_micros(t.saturating_sub(now)));
        if let Err(e) = net.poll(timeout, &mut events) {
            // The poller itself failed: nothing can be served any more.
            eprintln!("libpeer: event loop stopped: {e}");
            return;
        }
        let now = micros(start);
        while let Ok(cmd) = rx.try_recv() {
            if !clients.command(&mut core, now, cmd, net.open_connections(), &mut unused) {
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
        while let Some(Transmit { token, to, expected_static, request }) = core.poll_transmit() {
            net.send_request(token, to, expected_static, &request);
        }
        clients.deliver(&mut core);
    }
}
