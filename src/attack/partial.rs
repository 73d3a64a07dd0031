//! Attack 2, partial frames: connections to the victim that each announce a frame of 1 MiB
//! and send all of it but its last byte, then wait. Without a budget for partial frames the
//! victim keeps each one's bytes until the connection closes.
//!
//! `count`: connections held at once; `rate`: connections opened per second. A connection the
//! victim closes is replaced. The frame goes out one 16 KiB piece at a time, each only once
//! the socket took the last, so what the attacker itself holds (this process's memory too)
//! stays small whether or not the victim reads.

use super::client::Hostile;
use super::ctx::{fresh_key, AttackStats, Ctx, Pace, Params};
use super::session::{FRAME_HEADER, MAX_CHUNK};
use super::testnet::attacker_ip;
use crate::consts::MAX_MESSAGE;
use std::io;
use std::time::Duration;

/// Bytes of the frame that are sent: all but the last.
const SENT: usize = FRAME_HEADER + MAX_MESSAGE - 1;

/// The stream bytes each connection sends: a header announcing `MAX_MESSAGE` and the start of
/// a `set` whose bytevector never closes.
fn partial_frame() -> Vec<u8> {
    let mut f = (MAX_MESSAGE as u32).to_be_bytes().to_vec();
    f.extend_from_slice(b"#(set #u8(");
    while f.len() < SENT {
        f.extend_from_slice(b"7 ");
    }
    f.truncate(SENT);
    f
}

/// One connection and how much of the frame it has handed to its socket.
struct Conn {
    h: Hostile,
    sent: usize,
}

impl Conn {
    /// Hand the socket what it takes; false once the victim closed the connection.
    fn push(&mut self, frame: &[u8], cx: &Ctx) -> bool {
        loop {
            let r = if self.h.pending() > 0 {
                self.h.flush()
            } else if self.sent < frame.len() {
                let end = (self.sent + MAX_CHUNK).min(frame.len());
                let r = self.h.send_plain(&frame[self.sent..end]);
                AttackStats::add(&cx.stats.bytes, (end - self.sent) as u64);
                self.sent = end;
                r
            } else {
                return true;
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => {
                    AttackStats::add(&cx.stats.closed, 1);
                    return false;
                }
            }
        }
    }
}

pub fn run(cx: &Ctx, p: &Params) {
    let frame = partial_frame();
    let mut rng = cx.rng(2);
    let mut pace = Pace::new(p.rate, 1, 0);
    let mut conns: Vec<Conn> = Vec::new();
    while cx.live() {
        conns.retain_mut(|c| c.push(&frame, cx));
        if conns.len() >= p.count {
            cx.sleep(Duration::from_millis(20));
            continue;
        }
        if !pace.next(cx) {
            break;
        }
        match Hostile::connect(cx.net.victim().addr(), Some(attacker_ip(1)), fresh_key(&mut rng)) {
            Ok(h) if h.set_nonblocking(true).is_ok() => {
                AttackStats::add(&cx.stats.connections, 1);
                AttackStats::add(&cx.stats.requests, 1);
                conns.push(Conn { h, sent: 0 });
            }
            _ => AttackStats::add(&cx.stats.closed, 1),
        }
    }
    for c in conns {
        c.h.reset();
    }
}
