//! Buffers and boxes shared by every event loop of the process, so that hundreds of mostly
//! idle peers in one process do not each keep their own.
//!
//! - Scratch sets (socket reads, Noise records, frame encoding): a `Net` checks one out
//!   (`Lease`) when one of its calls (`poll`, `send_request`, `send_reply`) first needs it and
//!   hands it back when the call returns, so only loops that are working hold one (33 KiB
//!   each). Nothing in a set outlives the call that used it.
//! - Spare boxes of short-lived objects (a connection's handshake state): reused by the next
//!   connection of any peer, instead of each loop thread's allocator cache keeping a few.

use super::record::{HEADER_LEN, MAX_RECORD};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Bytes read from a socket per `read` call.
pub(super) const READ_SIZE: usize = 16 * 1024;
/// An encode buffer grown past this by a large message is freed when handed back.
const KEEP_ENC: usize = 16 * 1024;

/// Idle boxes, last in first out, at most `keep` of them.
pub(super) struct Pool<T> {
    idle: Mutex<Vec<Box<T>>>,
    keep: usize,
}

impl<T> Pool<T> {
    pub const fn new(keep: usize) -> Pool<T> {
        Pool { idle: Mutex::new(Vec::new()), keep }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Box<T>>> {
        // The pool holds plain boxes: a panic while it was locked leaves nothing half-done.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn take(&self) -> Option<Box<T>> {
        self.idle().pop()
    }

    /// Keep `b` for reuse; false (and `b` freed) when the pool is full.
    pub fn give(&self, b: Box<T>) -> bool {
        let mut idle = self.idle();
        if idle.len() >= self.keep {
            return false;
        }
        idle.push(b);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle().len()
    }
}

pub(super) struct Scratch {
    /// Socket reads land here.
    pub rx: Box<[u8]>,
    /// Decrypted records, or records being encrypted: one Noise message plus its length.
    pub crypt: Box<[u8]>,
    /// A frame being encoded (length prefix + datum text).
    pub enc: Vec<u8>,
}

/// The process's scratch sets: about as many idle ones as loops can run at once. A burst
/// beyond that allocates sets and frees them when they come back.
fn sets() -> &'static Pool<Scratch> {
    static SETS: OnceLock<Pool<Scratch>> = OnceLock::new();
    SETS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pool::new((2 * cores).clamp(4, 64))
    })
}

fn take_from(p: &Pool<Scratch>) -> Box<Scratch> {
    p.take().unwrap_or_else(|| {
        Box::new(Scratch {
            rx: vec![0; READ_SIZE].into_boxed_slice(),
            crypt: vec![0; HEADER_LEN + MAX_RECORD].into_boxed_slice(),
            enc: Vec::new(),
        })
    })
}

fn give_to(p: &Pool<Scratch>, mut s: Box<Scratch>) -> bool {
    if s.rx.len() != READ_SIZE || s.crypt.len() != HEADER_LEN + MAX_RECORD {
        return false; // not a set this pool made (defensive: only whole sets are handed out again)
    }
    s.enc.clear();
    if s.enc.capacity() > KEEP_ENC {
        s.enc = Vec::new();
    }
    p.give(s)
}

/// A scratch set from the pool, or a new one.
fn take() -> Box<Scratch> {
    take_from(sets())
}

/// Return a scratch set (freed when the pool is full).
fn give(s: Box<Scratch>) {
    give_to(sets(), s);
}

/// A loop's hold on a scratch set: checked out on first use during a call, handed back by
/// `release` when the call returns (or when the loop is dropped).
#[derive(Default)]
pub(super) struct Lease(Option<Box<Scratch>>);

impl Lease {
    pub fn get(&mut self) -> &mut Scratch {
        self.0.get_or_insert_with(take)
    }

    pub fn release(&mut self) {
        if let Some(b) = self.0.take() {
            give(b);
        }
    }

    #[cfg(test)]
    pub fn holds(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set comes back whole and is handed out again (last in, first out); the pool never
    /// keeps more than `keep`; a set with a missing buffer is not kept, and a grown encode
    /// buffer is freed.
    #[test]
    fn sets_are_reused_and_bounded() {
        let p = Pool::new(2);
        let mut a = take_from(&p);
        a.enc.resize(KEEP_ENC + 1, 1);
        let addr = &*a as *const Scratch;
        assert!(give_to(&p, a));
        let a = take_from(&p);
        assert_eq!(&*a as *const Scratch, addr);
        assert_eq!(a.enc.capacity(), 0);
        assert!(a.rx.len() == READ_SIZE && a.crypt.len() == HEADER_LEN + MAX_RECORD);
        let (b, c) = (take_from(&p), take_from(&p));
        assert!(give_to(&p, a) && give_to(&p, b));
        assert!(!give_to(&p, c));
        assert_eq!(p.len(), 2);
        let mut broken = take_from(&p);
        broken.rx = Box::default();
        assert!(!give_to(&p, broken));
        assert_eq!(p.len(), 1);
    }
}
