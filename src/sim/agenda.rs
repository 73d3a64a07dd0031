//! The simulator's events and the queue that orders them in virtual time.

use super::cpu::Step;
use super::link::Held;
use super::trace::Cause;
use crate::wire::{Reply, Request};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What travels with a request and its reply in the WAN mode (unused in the fixed mode).
#[derive(Clone, Copy, Debug, Default)]
pub struct Trip {
    /// The sender's trace node (`trace`), if it is traced.
    pub cause: Cause,
    /// CPU time (µs) spent on it so far, queueing included.
    pub cpu: u64,
    /// It opened a connection.
    pub cold: bool,
    /// The connection it travels on (`Link::serial`).
    pub serial: u64,
    /// When the sender's core sent it.
    pub sent_at: u64,
    /// The handshake step its receiver runs with it (XX message 3).
    pub step: Option<Step>,
}

pub enum Event {
    Request {
        from: usize,
        to: usize,
        token: u64,
        request: Request,
        trip: Trip,
    },
    /// `kind`: of the request answered (`kind_of`), to count the reply with it.
    Reply {
        to: usize,
        from: usize,
        token: u64,
        kind: usize,
        reply: Option<(Reply, [u8; 32])>,
        trip: Trip,
    },
    /// `at`: when it was set for; a timer replaced by an earlier one is stale.
    Timer {
        peer: usize,
        at: u64,
    },
    /// WAN: the dialer's TCP connect to `to` completed (at once in the QUIC what-if): it
    /// writes handshake message 1, and in IK every request held by then rides in it.
    /// `deadline`: when the dialer gives up if nobody answers (its first request's timeout).
    Connected {
        from: usize,
        to: usize,
        serial: u64,
        ik: bool,
        deadline: u64,
    },
    /// WAN: handshake message 1 reaches the acceptor `to`, with the requests riding in it
    /// (IK only).
    Hello {
        from: usize,
        to: usize,
        serial: u64,
        ik: bool,
        deadline: u64,
        first: Vec<Held<Trip>>,
    },
    /// WAN: message 2 reaches the dialer `to`, with the replies to the requests that rode
    /// in message 1, in their order: (token, kind, reply, responder's key, trip).
    Confirm {
        to: usize,
        from: usize,
        serial: u64,
        ik: bool,
        first: Vec<(u64, usize, Reply, [u8; 32], Trip)>,
    },
    /// WAN: the dialer learns that its connection `serial` to `acceptor` is gone (no answer
    /// by the deadline, refused at accept): what waits on it fails.
    Closed {
        dialer: usize,
        acceptor: usize,
        serial: u64,
    },
}

impl Event {
    /// `us` of CPU (queueing included) spent on what it carries, for the trace.
    pub fn add_cpu(&mut self, us: u64) {
        match self {
            Event::Request { trip, .. } | Event::Reply { trip, .. } => trip.cpu += us,
            Event::Hello { first, .. } => first.iter_mut().for_each(|h| h.trip.cpu += us),
            Event::Confirm { first, .. } => first.iter_mut().for_each(|f| f.4.cpu += us),
            _ => {}
        }
    }
}

/// Events by time: (time, sequence number, slot); the sequence number keeps events of the same
/// time in the order they were scheduled. The events wait in reused slots (cheaper than a map
/// keyed by sequence number), each with whether its CPU time was already paid (WAN).
#[derive(Default)]
pub struct Agenda {
    queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slots: Vec<Option<(Event, bool)>>,
    free: Vec<u32>,
    seq: u64,
}

impl Agenda {
    pub fn schedule(&mut self, at: u64, e: Event) {
        self.schedule_paid(at, e, false);
    }

    pub fn schedule_paid(&mut self, at: u64, e: Event, paid: bool) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(f) => {
                self.slots[f as usize] = Some((e, paid));
                f
            }
            None => {
                self.slots.push(Some((e, paid)));
                (self.slots.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    /// The next event: its time, itself, and whether its CPU time is paid.
    pub fn pop(&mut self) -> Option<(u64, Event, bool)> {
        let Reverse((t, _, slot)) = self.queue.pop()?;
        let (e, paid) = self.slots[slot as usize].take().expect("a queued event");
        self.free.push(slot);
        Some((t, e, paid))
    }

    /// When the next event falls.
    pub fn next_time(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }
}
