//! A connection's input (the reading side of `conn`): socket reads split into records, records decrypted (or fed to the
//! handshake), the plaintext split into frames, frames decoded into requests or replies.
//!
//! An accepting connection stops reading while its replies are not being read
//! (`Conn::over_pause`): the requests of the current read that follow the one that tipped it
//! over wait undecoded (`held`, then `rbuf`), the socket is left unread, and `resume` picks
//! up where it stopped once the output drains.

use super::conn::{guarded, Conn, Pending, Phase};
use super::event::{ConnError, NetEvent};
use super::noise::{Action, Confirmed, Finished};
use super::record::{record_len, HEADER_LEN};
use super::scratch::Scratch;
use crate::consts::MAX_IN_FLIGHT_PER_CONNECTION;
use crate::wire::frame::{write_frame, FrameDecoder};
use crate::wire::{decode_reply, decode_request, Request};
use std::collections::VecDeque;
use std::io::{self, Read};

/// Whether the reply to `r` may be large (`LARGE_REPLY`: a `ref` answered with a value of up
/// to a whole message) rather than small (`SMALL_REPLY`: the largest, 20 contacts, is about
/// 4.5 KiB). Exhaustive, so that a new request kind must say.
pub(super) fn large_reply(r: &Request) -> bool {
    match r {
        Request::Ref { .. } => true,
        Request::Iam { .. }
        | Request::Peers { .. }
        | Request::Set { .. }
        | Request::BagAdd { .. }
        | Request::BagQuery { .. }
        | Request::NamespaceSet { .. }
        | Request::NamespaceRef { .. } => false,
    }
}

impl Conn {
    /// Read until the socket has nothing more, handling every complete record; an accepting
    /// connection paused (its replies unread) reads nothing.
    /// `secret` is this peer's static key, for a handshake it answers.
    pub fn read_all(
        &mut self,
        secret: &[u8; 32],
        bufs: &mut Scratch,
        events: &mut Vec<NetEvent>,
    ) -> Result<(), ConnError> {
        let Scratch { rx, crypt, .. } = bufs;
        loop {
            if self.paused {
                return Ok(());
            }
            let n = match self.sock.read(rx) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.bytes_in += n as u64;
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.on_bytes(&rx[..n], secret, crypt, events)?;
        }
    }

    /// A paused connection whose output drained: decode what waited, then read the socket
    /// again (its readiness edge may have passed while paused).
    pub fn resume(&mut self, secret: &[u8; 32], bufs: &mut Scratch, events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        self.paused = false;
        let held = self.part.as_mut().map(|p| std::mem::take(&mut p.held)).unwrap_or_default();
        if !held.is_empty() {
            // Whole frames, decoded in order; any after a new pause are held again.
            FrameDecoder::new().push(&held, |body| self.on_frame(body, events))?;
        }
        let rest = self.part.as_mut().map(|p| std::mem::take(&mut p.rbuf)).unwrap_or_default();
        self.tidy();
        if self.paused {
            if !rest.is_empty() {
                self.part().rbuf = rest;
            }
            return Ok(());
        }
        if !rest.is_empty() {
            self.on_bytes(&rest, secret, &mut bufs.crypt, events)?;
        }
        self.read_all(secret, bufs, events)
    }

    /// Keep the unhandled rest of a read, whole records and all, for `resume`.
    fn stash(&mut self, data: &[u8]) {
        if !data.is_empty() {
            let rbuf = &mut self.part().rbuf;
            debug_assert!(rbuf.is_empty());
            rbuf.extend_from_slice(data);
        }
    }

    /// Split received bytes into records: whole ones are handled straight from `data`,
    /// only an incomplete tail is copied into `rbuf` (all of the rest, once paused).
    pub fn on_bytes(
        &mut self,
        mut data: &[u8],
        secret: &[u8; 32],
        crypt: &mut [u8],
        events: &mut Vec<NetEvent>,
    ) -> Result<(), ConnError> {
        if let Some(p) = self.part.as_mut().filter(|p| !p.rbuf.is_empty()) {
            // Complete the record started by an earlier read.
            let rbuf = &mut p.rbuf;
            if rbuf.len() < HEADER_LEN {
                let take = (HEADER_LEN - rbuf.len()).min(data.len());
                rbuf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if rbuf.len() < HEADER_LEN {
                    return Ok(());
                }
            }
            let want = HEADER_LEN + record_len(rbuf)?;
            rbuf.reserve_exact(want - rbuf.len());
            let take = (want - rbuf.len()).min(data.len());
            rbuf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if rbuf.len() < want {
                return Ok(());
            }
            // Taken (and freed once handled): an idle connection holds no input buffer.
            let rec = std::mem::take(rbuf);
            self.tidy();
            self.on_record(&rec[HEADER_LEN..], secret, crypt, events)?;
            if self.paused {
                self.stash(data);
                return Ok(());
            }
        }
        while data.len() >= HEADER_LEN {
            let end = HEADER_LEN + record_len(data)?;
            let Some(rec) = data.get(HEADER_LEN..end) else {
                break;
            };
            self.on_record(rec, secret, crypt, events)?;
            data = &data[end..];
            if self.paused {
                self.stash(data);
                return Ok(());
            }
        }
        if !data.is_empty() {
            // A record is at most 16 KiB: reserved whole, it is copied once.
            let want = if data.len() >= HEADER_LEN { HEADER_LEN + record_len(data)? } else { HEADER_LEN };
            let rbuf = &mut self.part().rbuf;
            rbuf.reserve_exact(want);
            rbuf.extend_from_slice(data);
        }
        Ok(())
    }

    fn on_record(
        &mut self,
        rec: &[u8],
        secret: &[u8; 32],
        crypt: &mut [u8],
        events: &mut Vec<NetEvent>,
    ) -> Result<(), ConnError> {
        let o = match &mut self.phase {
            Phase::Open(ts) => {
                let n = ts.read_message(rec, crypt)?;
                return self.feed_plain(&crypt[..n], events);
            }
            Phase::Handshake(o) => o,
        };
        match o.noise.on_record(rec, secret, crypt)? {
            Action::Send(reply) => self.write_out(reply.record())?,
            Action::Open { reply, session, plain } => {
                if let Some(r) = reply {
                    self.write_out(r.record())?;
                }
                self.open(session);
                self.feed_plain(plain, events)?;
            }
            Action::Confirmed(c) => self.confirmed(c, crypt, events)?,
        }
        Ok(())
    }

    /// Dialer, message 2 read: send everything that waited for the handshake, in order (the
    /// first request's unsent bytes, then the held-back requests whose key, if they named
    /// one, is the responder's), its head in XX message 3.
    fn confirmed(&mut self, c: Confirmed, crypt: &mut [u8], events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        let remote = c.remote_static();
        let Phase::Handshake(o) = &mut self.phase else {
            return Err(ConnError::Protocol("handshake state lost"));
        };
        let mut plain = std::mem::take(&mut o.unsent);
        for q in std::mem::take(&mut o.queued) {
            if q.expected.is_some_and(|k| k != remote) {
                events.push(NetEvent::Failed { token: q.token });
            } else {
                plain.extend_from_slice(&q.frame);
                self.pending.push_back(Pending { token: q.token, deadline: q.deadline, retry: None });
            }
        }
        let Finished { session, record, carried } = c.finish(&plain, crypt)?;
        if !record.is_empty() {
            self.write_out(record)?;
        }
        self.open(session);
        self.send_plain(&plain[carried..], crypt)
    }

    /// Split decrypted bytes into frames: whole ones are decoded in place, an incomplete
    /// one is kept by the decoder (in the partial box).
    pub fn feed_plain(&mut self, data: &[u8], events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        // Taken out so frames can be handled while `self` is lent to them; an empty
        // decoder holds no heap memory, so this costs nothing when no frame is partial.
        let mut frames = self.part.as_mut().map(|p| std::mem::take(&mut p.frames)).unwrap_or_default();
        let r = frames.push(data, |body| self.on_frame(body, events));
        if frames.buffered() > 0 {
            self.part().frames = frames;
        } else {
            self.tidy();
        }
        r
    }

    fn on_frame(&mut self, body: &[u8], events: &mut Vec<NetEvent>) -> Result<(), ConnError> {
        if self.outbound {
            if self.pending.is_empty() {
                return Err(ConnError::Protocol("reply without a request"));
            }
            let reply = guarded(|| decode_reply(body)).ok_or(ConnError::Protocol("malformed reply"))?;
            let token = self.pending.pop_front().map(|p| p.token).unwrap_or_default();
            if self.pending.is_empty() {
                // Nothing in flight: an idle connection holds no queue.
                self.pending = VecDeque::new();
            }
            self.useful = true;
            events.push(NetEvent::Reply { token, reply, remote_static: self.remote_static });
        } else {
            if self.paused {
                // After the request that paused this read: kept whole, decoded on resume.
                write_frame(&mut self.part().held, |b| b.extend_from_slice(body))?;
                return Ok(());
            }
            if self.unanswered >= MAX_IN_FLIGHT_PER_CONNECTION {
                return Err(ConnError::Protocol("too many requests in flight"));
            }
            let request = guarded(|| decode_request(body)).ok_or(ConnError::Protocol("malformed request"))?;
            // Bit i stands for the i-th oldest unanswered request (at most 64 of them).
            self.large |= u64::from(large_reply(&request)) << self.unanswered;
            self.unanswered += 1;
            if self.over_pause() {
                self.paused = true;
            }
            events.push(NetEvent::Request {
                conn: self.id,
                from: self.peer,
                remote_static: self.remote_static,
                request,
            });
        }
        Ok(())
    }
}
