//! A peer's commands on their way from its handles to its event loop. A queue that holds no
//! memory while empty (a channel would keep a block of 31 commands, 6.7 KiB, in every idle
//! peer), and that knows whether the loop was told of it: only the first command after the
//! loop found the queue empty wakes the loop.

use super::driver::Command;
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::VecDeque;

/// Commands one peer handles per turn; the rest wait for the loop's next turn, so a peer
/// flooded by its callers does not hold up the loop's other peers.
pub(crate) const MAX_COMMANDS_PER_TURN: usize = 64;

#[derive(Default)]
pub(crate) struct Mailbox(Mutex<Queue>);

#[derive(Default)]
struct Queue {
    cmds: VecDeque<Command>,
    /// The peer is gone: commands are refused.
    closed: bool,
    /// The loop was told and has not yet found the queue empty.
    notified: bool,
}

/// How a batch of commands ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Drained {
    /// None is left.
    Empty,
    /// `MAX_COMMANDS_PER_TURN` were handled and more wait.
    More,
    /// The handler asked to stop.
    Stopped,
}

impl Mailbox {
    /// Queue `cmd`. Ok(true): the loop must be told (it believes the queue empty).
    pub fn post(&self, cmd: Command) -> Result<bool> {
        let mut q = self.0.lock();
        if q.closed {
            return Err(Error::Closed);
        }
        q.cmds.push_back(cmd);
        Ok(!std::mem::replace(&mut q.notified, true))
    }

    /// Hand queued commands to `f` (at most `MAX_COMMANDS_PER_TURN`) until it returns false.
    pub fn drain(&self, mut f: impl FnMut(Command) -> bool) -> Drained {
        for _ in 0..MAX_COMMANDS_PER_TURN {
            let Some(cmd) = self.next() else {
                return Drained::Empty;
            };
            if !f(cmd) {
                return Drained::Stopped;
            }
        }
        let mut q = self.0.lock();
        if q.cmds.is_empty() {
            q.notified = false;
            q.cmds = VecDeque::new();
            Drained::Empty
        } else {
            Drained::More
        }
    }

    fn next(&self) -> Option<Command> {
        let mut q = self.0.lock();
        let cmd = q.cmds.pop_front();
        if q.cmds.is_empty() {
            if cmd.is_none() {
                q.notified = false;
            }
            if q.cmds.capacity() > 0 {
                q.cmds = VecDeque::new(); // an idle peer holds no queue
            }
        }
        cmd
    }

    /// The peer is gone: later posts fail, and the queued commands are dropped (their
    /// callers see their reply channels close).
    pub fn close(&self) {
        let cmds = {
            let mut q = self.0.lock();
            q.closed = true;
            std::mem::take(&mut q.cmds)
        };
        drop(cmds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    fn stats() -> (Command, crossbeam_channel::Receiver<super::super::Stats>) {
        let (tx, rx) = bounded(1);
        (Command::Stats(tx), rx)
    }

    /// Only the first post after the queue was found empty asks for a wake; a batch stops at
    /// the bound; closing drops what waits and refuses more.
    #[test]
    fn wakes_once_per_batch_and_closes() {
        let m = Mailbox::default();
        assert!(m.post(stats().0).unwrap());
        assert!(!m.post(stats().0).unwrap());
        assert_eq!(m.drain(|_| true), Drained::Empty);
        assert!(m.post(stats().0).unwrap(), "found empty: the next post wakes the loop again");
        for _ in 0..MAX_COMMANDS_PER_TURN {
            m.post(stats().0).unwrap();
        }
        assert_eq!(m.drain(|_| true), Drained::More);
        assert!(!m.post(stats().0).unwrap(), "the loop comes back by itself");
        assert_eq!(m.drain(|c| !matches!(c, Command::Stop)), Drained::Empty);
        for _ in 0..MAX_COMMANDS_PER_TURN {
            m.post(stats().0).unwrap();
        }
        assert_eq!(m.drain(|_| true), Drained::Empty, "exactly the bound: nothing left");
        assert!(m.post(Command::Stop).unwrap());
        assert_eq!(m.drain(|c| !matches!(c, Command::Stop)), Drained::Stopped);
        let (cmd, answer) = stats();
        m.post(cmd).unwrap();
        m.close();
        assert!(answer.recv().is_err(), "a dropped command's caller hears of it");
        assert!(matches!(m.post(stats().0), Err(Error::Closed)));
    }
}
