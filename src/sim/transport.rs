//! The WAN mode's delivery (issue 12): what the built-in transport does with each request,
//! step by step in virtual time. A request goes on an open connection (one way there, one
//! back), waits for a handshake under way, or opens a connection: TCP's round trip, then Noise
//! message 1, written once the connect is up (`Conn::hello`): in IK, when the core names the
//! key, every request held by then rides in it (as much as fits one record: the `iam`
//! introduction and the request behind it), and the acceptor answers each with message 2;
//! later ones wait for message 2. In XX the requests ride in message 3. The QUIC what-if
//! (`Transport::Quic`) drops TCP's round trip. Every arrival first takes its receiver's CPU
//! (`cpu`); a stopped peer is silent, so what was sent to it fails at the request timeout
//! (`Event::Closed`); connections are opened, kept and closed by `link` (`net::policy`).

use super::agenda::{Event, Trip};
use super::cpu::Step;
use super::link::{Found, Held};
use super::network::{kind_of, Sim};
use super::wan::Transport;
use crate::consts::{MAX_IN_FLIGHT_PER_CONNECTION, REQUEST_TIMEOUT_US};
use crate::core::Transmit;
use crate::net::IK1_PAYLOAD;
use crate::wire::frame::write_frame;
use crate::wire::{encode_request, Reply, Request};

/// Bytes `r` takes in the plaintext stream (frame header included).
fn framed_len(r: &Request) -> usize {
    let mut buf = Vec::new();
    write_frame(&mut buf, |b| encode_request(r, b)).map_or(usize::MAX, |()| buf.len())
}

impl Sim {
    /// WAN: the peer whose CPU an arriving event takes, and how long (ns).
    pub(super) fn cpu_cost(&self, e: &Event) -> Option<(usize, u64)> {
        let c = &self.wan.as_ref()?.cpu;
        let decode = |r: &Request| c.decode_request[kind_of(r)];
        match e {
            Event::Request { to, request, trip, .. } => {
                Some((*to, decode(request) + trip.step.map_or(0, |s| c.step(s))))
            }
            Event::Reply { to, kind, reply: Some(_), .. } => Some((*to, c.decode_reply[*kind])),
            Event::Hello { to, ik, first, .. } => {
                let step = c.step(if *ik { Step::IkAccept } else { Step::XxAccept });
                Some((*to, step + first.iter().map(|h| decode(&h.request)).sum::<u64>()))
            }
            Event::Confirm { to, ik, first, .. } => {
                let step = c.step(if *ik { Step::IkConfirm } else { Step::XxConfirm });
                Some((*to, step + first.iter().map(|f| c.decode_reply[f.1]).sum::<u64>()))
            }
            _ => None,
        }
    }

    pub(super) fn step_wan(&mut self, e: Event) {
        let now = self.now;
        match e {
            Event::Request { from, to, token, request, trip } => {
                if self.stopped[to] {
                    // Silent: the dialer closes the connection at the request's deadline.
                    let closed = Event::Closed { dialer: from, acceptor: to, serial: trip.serial };
                    self.schedule(trip.sent_at + REQUEST_TIMEOUT_US, closed);
                    return;
                }
                let w = self.wan.as_mut().expect("WAN mode");
                let Some(l) = w.links.get(from, to, trip.serial) else { return };
                (l.in_last, l.in_useful) = (now, true);
                w.note(to, now);
                self.messages += 1;
                let kind = kind_of(&request);
                let reply = self.answer(from, to, request);
                self.send_reply(to, from, token, kind, reply, trip);
                self.pump(to);
            }
            Event::Reply { to, from, token, kind, reply, trip } => {
                if self.stopped[to] {
                    return;
                }
                let w = self.wan.as_mut().expect("WAN mode");
                let rtt = 2 * w.one_way(from, to);
                if let Some(l) = w.links.get(to, from, trip.serial) {
                    l.pending.retain(|&t| t != token);
                    if reply.is_some() {
                        (l.out_last, l.out_useful) = (now, true);
                    }
                }
                if w.trace.peer == Some(to) {
                    match reply {
                        Some(_) => w.trace.reply(trip.cause, now, rtt, trip.cpu, trip.cold),
                        None => w.trace.failed(trip.cause, now),
                    }
                }
                if let Some((r, _)) = &reply {
                    self.messages += 1;
                    self.count_reply(kind, r);
                }
                self.peers[to].handle_reply(now, token, reply);
                self.pump(to);
            }
            Event::Timer { peer, at } => self.timer(peer, at),
            Event::Connected { from, to, serial, ik, deadline } => {
                let w = self.wan.as_mut().expect("WAN mode");
                let one_way = w.one_way(from, to);
                let step = w.cpu.step(if ik { Step::IkDial } else { Step::XxDial });
                let Some(l) = w.links.get(from, to, serial) else { return };
                // IK: what is held by now rides in message 1, as far as one record holds it
                // (a request cut by the record's end rides too; what follows waits).
                let mut first = Vec::new();
                if ik {
                    let mut room = IK1_PAYLOAD;
                    while room > 0 && !l.held.is_empty() {
                        let h = l.held.remove(0);
                        room = room.saturating_sub(framed_len(&h.request));
                        l.pending.push(h.token);
                        first.push(h);
                    }
                }
                let left = w.queue.run(from, now, step);
                self.schedule(left + one_way, Event::Hello { from, to, serial, ik, deadline, first });
            }
            Event::Hello { from, to, serial, ik, deadline, first } => {
                if self.stopped[to] {
                    self.schedule(deadline, Event::Closed { dialer: from, acceptor: to, serial });
                    return;
                }
                let w = self.wan.as_mut().expect("WAN mode");
                let one_way = w.one_way(from, to);
                if w.links.get(from, to, serial).is_none() {
                    return;
                }
                if !w.links.accept(from, to, now) {
                    // Closed at accept: the dialer hears of it one way later.
                    self.schedule(now + one_way, Event::Closed { dialer: from, acceptor: to, serial });
                    return;
                }
                let Some(l) = w.links.get(from, to, serial) else { return };
                l.in_last = now;
                l.in_useful |= !first.is_empty();
                w.note(to, now);
                if first.is_empty() {
                    // XX (or nothing rode): message 2 goes back; the requests follow message 3.
                    self.schedule(now + one_way, Event::Confirm { to: from, from: to, serial, ik, first: Vec::new() });
                    return;
                }
                // Each request answered in order, each reply encoded as it is ready; message 2
                // and the replies reach the dialer together, after the last one left.
                let mut left = now;
                let mut replies = Vec::with_capacity(first.len());
                for h in first {
                    self.messages += 1;
                    let kind = kind_of(&h.request);
                    let (reply, remote) = self.answer(from, to, h.request);
                    let w = self.wan.as_mut().expect("WAN mode");
                    left = w.queue.run(to, now, w.cpu.encode_reply[kind]);
                    let trip = Trip { cpu: h.trip.cpu + (left - now), ..h.trip };
                    replies.push((h.token, kind, reply, remote, trip));
                }
                self.schedule(left + one_way, Event::Confirm { to: from, from: to, serial, ik, first: replies });
                self.pump(to);
            }
            Event::Confirm { to, from, serial, ik, first } => {
                if self.stopped[to] {
                    return;
                }
                let w = self.wan.as_mut().expect("WAN mode");
                let one_way = w.one_way(to, from);
                let Some(l) = w.links.get(to, from, serial) else { return };
                (l.open, l.out_last) = (true, now);
                let held = std::mem::take(&mut l.held);
                for h in &held {
                    l.pending.push(h.token);
                }
                for (token, ..) in &first {
                    l.pending.retain(|t| t != token);
                    l.out_useful = true;
                }
                w.links.stats.handshakes += 1;
                // What waited for the handshake goes now, the head of it in XX message 3.
                for (i, h) in held.into_iter().enumerate() {
                    let step = (!ik && i == 0).then_some(Step::XxFinish);
                    let trip = Trip { step, ..h.trip };
                    let e = Event::Request { from: to, to: from, token: h.token, request: h.request, trip };
                    self.schedule(now + one_way, e);
                }
                for (token, kind, reply, remote, trip) in first {
                    let w = self.wan.as_mut().expect("WAN mode");
                    if w.trace.peer == Some(to) {
                        w.trace.reply(trip.cause, now, 2 * one_way, trip.cpu, trip.cold);
                    }
                    self.messages += 1;
                    self.count_reply(kind, &reply);
                    self.peers[to].handle_reply(now, token, Some((reply, remote)));
                }
                self.pump(to);
            }
            Event::Closed { dialer, acceptor, serial } => {
                let w = self.wan.as_mut().expect("WAN mode");
                if self.stopped[dialer] || w.links.get(dialer, acceptor, serial).is_none() {
                    return;
                }
                let Some(l) = w.links.remove(dialer, acceptor) else { return };
                if !l.open && self.stopped[acceptor] {
                    w.links.stats.dead_dials += 1;
                }
                let failed: Vec<u64> = l.pending.iter().copied().chain(l.held.iter().map(|h| h.token)).collect();
                for token in failed {
                    let w = self.wan.as_mut().expect("WAN mode");
                    w.note(dialer, now);
                    self.peers[dialer].handle_reply(now, token, None);
                    self.pump(dialer);
                }
            }
        }
    }

    /// WAN: peer `from` sends its reply to `to` (its CPU encodes it first).
    pub(super) fn send_reply(
        &mut self,
        from: usize,
        to: usize,
        token: u64,
        kind: usize,
        reply: (Reply, [u8; 32]),
        trip: Trip,
    ) {
        let now = self.now;
        let w = self.wan.as_mut().expect("WAN mode");
        let left = w.queue.run(from, now, w.cpu.encode_reply[kind]);
        let trip = Trip { cpu: trip.cpu + (left - now), ..trip };
        let at = left + w.one_way(from, to);
        self.schedule(at, Event::Reply { to, from, token, kind, reply: Some(reply), trip });
    }

    /// WAN: peer `a`'s core sends `t`: on an open connection, held for one being opened, or
    /// on a new one (TCP's round trip, then the handshake's first message).
    pub(super) fn send_wan(&mut self, a: usize, t: Transmit) {
        let now = self.now;
        let kind = kind_of(&t.request);
        self.wan.as_mut().expect("WAN mode").links.tidy(now);
        let fail = |token| Event::Reply { to: a, from: a, token, kind, reply: None, trip: Trip::default() };
        let Some(b) = self.index_of(&t.to) else {
            // Nobody there: the connect goes unanswered until the request's deadline.
            self.schedule(now + REQUEST_TIMEOUT_US, fail(t.token));
            return;
        };
        let marks = self.peers[a].request_marks(t.token);
        let w = self.wan.as_mut().expect("WAN mode");
        if w.trace.peer == Some(a) {
            w.trace.sent(now, marks);
        }
        let one_way = w.one_way(a, b);
        let left = w.queue.run(a, now, w.cpu.encode_request[kind]);
        let mut trip = Trip { cause: w.cause(a), cpu: left - now, sent_at: now, ..Trip::default() };
        let (token, request) = (t.token, t.request);
        let from = match w.links.find(a, b, now, one_way, t.contact) {
            found @ (Found::Open | Found::Opening) => {
                let l = w.links.get_any(a, b).expect("found");
                if l.load() >= MAX_IN_FLIGHT_PER_CONNECTION {
                    self.schedule(now, fail(token));
                    return;
                }
                trip.serial = l.serial;
                if matches!(found, Found::Opening) {
                    // It waits for the handshake as much as the request that opened it.
                    trip.cold = true;
                    l.held.push(Held { token, request, trip });
                    w.links.stats.held += 1;
                } else {
                    l.pending.push(token);
                    l.out_last = now;
                    w.links.stats.warm += 1;
                    self.schedule(left + one_way, Event::Request { from: a, to: b, token, request, trip });
                }
                return;
            }
            Found::None { at } => at.unwrap_or(now).max(left),
        };
        let ik = t.expected_static.is_some();
        let Some(l) = w.links.dial(a, b, now, ik, t.contact) else {
            self.schedule(now, fail(token));
            return;
        };
        trip.cold = true;
        trip.serial = l.serial;
        let serial = l.serial;
        // Held until message 1 leaves (`Event::Connected`): in IK it rides in it, with
        // whatever else the core sends meanwhile.
        l.held.push(Held { token, request, trip });
        let deadline = now + REQUEST_TIMEOUT_US;
        if self.stopped[b] {
            // The SYN is never answered: the connection fails at the request's deadline.
            self.schedule(deadline, Event::Closed { dialer: a, acceptor: b, serial });
            return;
        }
        let connected = match w.transport {
            Transport::Tcp => from + 2 * one_way,
            Transport::Quic => from,
        };
        self.schedule(connected, Event::Connected { from: a, to: b, serial, ik, deadline });
    }
}
