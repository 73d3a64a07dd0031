//! The process's event loops: a few threads (one per core by default; `LIBPEER_LOOP_THREADS`
//! overrides it), each with one mio `Poll` hosting many peers, instead of a thread per peer
//! (a thread costs its stack and allocator cache even while its peer is idle).
//!
//! A new peer goes to the loop with the fewest peers, under a slot number; its sockets are
//! registered under tokens `slot << TOKEN_BITS | the Net's own token`, so each readiness event
//! goes to its peer by a shift. A handle queues a command in its peer's `Mailbox`, then puts
//! the slot on the loop's ready list and wakes the loop (once, until the loop has looked).
//! Each peer tells the loop when it must run next (`Hosted::wake_at`); the loop keeps those
//! times in a heap and sleeps until the earliest.
//!
//! Fairness: a turn hands a peer what one poll returned for it (at most `EVENTS_PER_WAIT`
//! events for the whole loop) and at most `MAX_COMMANDS_PER_TURN` of its commands; commands
//! left over wait for the next turn, which does not sleep. Isolation: a panic inside a peer's
//! turn is caught; that peer is dropped (its callers get `Error::Closed`, as when a peer's
//! thread died) and the loop goes on with the others.
//!
//! A turn must not block: a peer's data-directory writes (a durable commit before a store is
//! answered, `disk`) are the one exception, and delay the loop's other peers meanwhile.
//!
//! The threads live as long as the process (a process exits without waiting for them); how
//! many there are is read from `LOOP_THREADS_ENV` when the first peer starts. A peer's handle
//! waits for the peer to be dropped on its loop (sockets closed, data directory saved) when it
//! closes, as it joined the peer's thread before.

use super::driver::Command;
use super::mailbox::Mailbox;
use crate::error::{Error, Result};
use crate::net::{NetEvent, Ready, TOKEN_BITS};
use crossbeam_channel::{bounded, Receiver, Sender};
use mio::{Events, Poll, Registry, Token, Waker};
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Environment variable: how many event-loop threads the process runs (default: the
/// available parallelism, at least 1).
pub(crate) const LOOP_THREADS_ENV: &str = "LIBPEER_LOOP_THREADS";
/// Most loop threads `LOOP_THREADS_ENV` may ask for.
const MAX_LOOPS: usize = 256;
/// Readiness events one wait takes, over all the loop's peers. Past it they stay queued in
/// the kernel (edge-triggered) and the next wait, which does not sleep, returns them.
const EVENTS_PER_WAIT: usize = 256;
/// With nothing scheduled, the loop still wakes this often (every peer has a timer anyway).
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Slot 0 is the loop's waker; peers have 1 ..= MAX_SLOT.
const MAX_SLOT: usize = (1 << (usize::BITS - TOKEN_BITS)) - 1;
const WAKER: Token = Token(0);
/// A buffer grown past this by a burst is freed when the loop goes to sleep.
const KEEP_BUFFER: usize = 64;

/// A peer as its loop runs it.
pub(crate) trait Hosted: Send {
    /// Register its sockets under `base` | their own tokens; called once, on the loop thread,
    /// before the first turn.
    fn attach(&mut self, base: usize) -> io::Result<()>;
    /// One turn: `ready` is its sockets' readiness since the last turn (maybe none), `events`
    /// an empty vector to use for the transport's events (left empty). Handles at most
    /// `MAX_COMMANDS_PER_TURN` commands of its mailbox.
    fn turn(&mut self, ready: &[Ready], events: &mut Vec<NetEvent>) -> Turn;
    /// When it must run again with nothing ready.
    fn wake_at(&self) -> Instant;
}

/// What a turn left.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Turn {
    Done,
    /// Commands are still queued: run again without sleeping.
    More,
    /// The peer stopped (its `Stop` command, or every handle gone): drop it.
    Stop,
}

/// One event-loop thread, as the handles see it.
pub(crate) struct Loop {
    waker: Arc<Waker>,
    /// Its poll's registry (one duplicated descriptor per loop), for its peers' `Net`s.
    registry: Arc<Registry>,
    inbox: Mutex<Inbox>,
}

#[derive(Default)]
struct Inbox {
    /// Peers to start hosting.
    adopt: Vec<Adopt>,
    /// Slots whose handles queued commands since the loop last looked.
    notified: Vec<usize>,
    /// Slots given back, for reuse.
    free: Vec<usize>,
    /// Highest slot handed out so far.
    top: usize,
    /// Peers hosted or being adopted.
    live: usize,
    /// The thread is gone (its poller failed): no peer can be hosted here.
    dead: bool,
}

struct Adopt {
    slot: usize,
    peer: Box<dyn Hosted>,
    mailbox: Arc<Mailbox>,
    done: Sender<()>,
    started: Sender<io::Result<()>>,
}

/// A handle's link to its hosted peer.
pub(crate) struct Link {
    lp: Arc<Loop>,
    slot: usize,
    mailbox: Arc<Mailbox>,
    /// Disconnected once the peer was dropped.
    done: Receiver<()>,
}

impl Link {
    /// Queue a command for the peer (`Error::Closed` once it is gone) and wake its loop
    /// unless the loop is already due to look.
    pub fn send(&self, cmd: Command) -> Result<()> {
        if !self.mailbox.post(cmd)? {
            return Ok(());
        }
        self.lp.inbox.lock().notified.push(self.slot);
        self.lp.waker.wake().map_err(|e| Error::Io(format!("cannot wake the event loop: {e}")))
    }

    /// Block until the peer was dropped (stopped, or dropped after a panic).
    pub fn wait_stopped(&self) {
        let _ = self.done.recv();
    }
}

impl Loop {
    fn start(index: usize) -> io::Result<Arc<Loop>> {
        let poll = Poll::new()?;
        let registry = Arc::new(poll.registry().try_clone()?);
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let lp = Arc::new(Loop { waker, registry, inbox: Mutex::new(Inbox::default()) });
        let run = lp.clone();
        std::thread::Builder::new().name(format!("peer-loop-{index}")).spawn(move || {
            // Marks the loop dead however its thread ends, so no handle waits on it.
            let _guard = DeadOnExit(run.clone());
            Runner::new(run, poll).run()
        })?;
        Ok(lp)
    }

    /// Its registry and waker, for a peer's `Net` that `host` will then be given.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Start hosting `peer`, which reads its commands from `mailbox`; returns once it is
    /// attached (its sockets registered).
    pub fn host(self: &Arc<Self>, peer: Box<dyn Hosted>, mailbox: Arc<Mailbox>) -> Result<Link> {
        let (done_tx, done) = bounded(0);
        let (started_tx, started) = bounded(1);
        let slot = {
            let mut inbox = self.inbox.lock();
            if inbox.dead {
                return Err(Error::Io("the event loop has stopped".into()));
            }
            let slot = match inbox.free.pop() {
                Some(s) => s,
                None if inbox.top < MAX_SLOT => {
                    inbox.top += 1;
                    inbox.top
                }
                None => return Err(Error::Io("too many peers on one event loop".into())),
            };
            inbox.live += 1;
            let adopt = Adopt { slot, peer, mailbox: mailbox.clone(), done: done_tx, started: started_tx };
            inbox.adopt.push(adopt);
            slot
        };
        if let Err(e) = self.waker.wake() {
            // The peer is queued: returning now would leave it hosted with no handle. The
            // loop adopts it at its next wake.
            log::error!("cannot wake the event loop: {e}");
        }
        match started.recv() {
            Ok(Ok(())) => Ok(Link { lp: self.clone(), slot, mailbox, done }),
            Ok(Err(e)) => Err(Error::Io(format!("cannot register the peer's sockets: {e}"))),
            Err(_) => Err(Error::Io("the event loop has stopped".into())),
        }
    }

    fn load(&self) -> Option<usize> {
        let inbox = self.inbox.lock();
        (!inbox.dead).then_some(inbox.live)
    }
}

struct DeadOnExit(Arc<Loop>);

impl Drop for DeadOnExit {
    fn drop(&mut self) {
        let mut inbox = self.0.inbox.lock();
        inbox.dead = true;
        // Peers not yet adopted: dropping them tells their constructors.
        inbox.adopt.clear();
    }
}

/// How many loops the process runs.
fn loop_count() -> usize {
    let default = || std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = match std::env::var(LOOP_THREADS_ENV) {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|&n| n > 0).unwrap_or_else(default),
        Err(_) => default(),
    };
    n.clamp(1, MAX_LOOPS)
}

/// The process's loops, each started on first use.
fn loops() -> &'static [OnceLock<Arc<Loop>>] {
    static LOOPS: OnceLock<Vec<OnceLock<Arc<Loop>>>> = OnceLock::new();
    LOOPS.get_or_init(|| (0..loop_count()).map(|_| OnceLock::new()).collect())
}

/// The loop with the fewest peers (one not yet started counts as empty and starts now).
pub(crate) fn pick() -> Result<Arc<Loop>> {
    #[cfg(test)]
    if let Some(lp) = tests::FORCED.with(|f| f.borrow().clone()) {
        return Ok(lp);
    }
    static START: Mutex<()> = Mutex::new(());
    let _one_at_a_time = START.lock(); // two constructors must not both start loop i
    let all = loops();
    let mut best: Option<(usize, usize)> = None; // (load, index)
    for (i, l) in all.iter().enumerate() {
        let load = match l.get() {
            Some(lp) => match lp.load() {
                Some(n) => n,
                None => continue,
            },
            None => 0,
        };
        if best.is_none_or(|(b, _)| load < b) {
            best = Some((load, i));
        }
    }
    let Some((_, i)) = best else {
        return Err(Error::Io("every event loop has stopped".into()));
    };
    if let Some(lp) = all[i].get() {
        return Ok(lp.clone());
    }
    let lp = Loop::start(i).map_err(|e| Error::Io(format!("cannot start an event loop: {e}")))?;
    Ok(all[i].get_or_init(|| lp).clone())
}

struct Slot {
    peer: Box<dyn Hosted>,
    /// Closed once the peer is dropped.
    mailbox: Closing,
    /// Dropped after the peer: its handle's `wait_stopped` returns.
    done: Sender<()>,
    /// The time of its valid entry in the timer heap.
    queued: Option<Instant>,
    /// Tells a reused slot's entries from its former peer's.
    serial: u64,
}

/// The loop thread's state.
struct Runner {
    lp: Arc<Loop>,
    poll: Poll,
    peers: Vec<Option<Slot>>,
    live: usize,
    serial: u64,
    /// (when, slot, serial), earliest first; entries whose peer moved on are skipped.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Slots with commands left over from the last turn.
    again: Vec<usize>,
}

impl Runner {
    fn new(lp: Arc<Loop>, poll: Poll) -> Runner {
        Runner { lp, poll, peers: Vec::new(), live: 0, serial: 0, timers: BinaryHeap::new(), again: Vec::new() }
    }

    fn run(mut self) {
        let mut mio_events = Events::with_capacity(EVENTS_PER_WAIT);
        let mut ready: Vec<Ready> = Vec::new();
        let mut turn: Vec<usize> = Vec::new();
        let mut events: Vec<NetEvent> = Vec::new();
        loop {
            let wait = if self.again.is_empty() {
                let next = self.timers.peek().map(|Reverse((t, ..))| *t);
                next.map_or(MAX_SLEEP, |t| t.saturating_duration_since(Instant::now()).min(MAX_SLEEP))
            } else {
                Duration::ZERO
            };
            if !wait.is_zero() {
                // About to sleep: buffers grown by a burst go.
                for v in [&mut ready as &mut dyn Shrink, &mut turn, &mut events] {
                    v.shrink();
                }
            }
            match self.poll.poll(&mut mio_events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Nothing can be served any more; dropping the peers tells their handles.
                    eprintln!("libpeer: event loop stopped: {e}");
                    return;
                }
            }
            let (adopt, notified) = {
                let mut inbox = self.lp.inbox.lock();
                (std::mem::take(&mut inbox.adopt), std::mem::take(&mut inbox.notified))
            };
            for a in adopt {
                self.adopt(a, &mut turn);
            }
            turn.extend(notified);
            turn.append(&mut self.again);
            ready.extend(mio_events.iter().filter(|e| e.token() != WAKER).map(Ready::of));
            // Stable: each peer's events keep their order.
            ready.sort_by_key(|r| r.token >> TOKEN_BITS);
            turn.extend(ready.iter().map(|r| r.token >> TOKEN_BITS));
            let now = Instant::now();
            while let Some(&Reverse((at, slot, serial))) = self.timers.peek() {
                if at > now {
                    break;
                }
                self.timers.pop();
                if let Some(Some(p)) = self.peers.get_mut(slot) {
                    if p.serial == serial && p.queued == Some(at) {
                        p.queued = None;
                        turn.push(slot);
                    }
                }
            }
            turn.sort_unstable();
            turn.dedup();
            for &slot in &turn {
                let lo = ready.partition_point(|r| r.token >> TOKEN_BITS < slot);
                let hi = ready.partition_point(|r| r.token >> TOKEN_BITS <= slot);
                self.run_peer(slot, &ready[lo..hi], &mut events);
            }
            turn.clear();
            ready.clear();
            if self.timers.len() > 2 * self.live + 64 {
                self.compact_timers();
            }
        }
    }

    fn adopt(&mut self, a: Adopt, turn: &mut Vec<usize>) {
        let Adopt { slot, mut peer, mailbox, done, started } = a;
        let mailbox = Closing(mailbox);
        let base = slot << TOKEN_BITS;
        let attached = catch_unwind(AssertUnwindSafe(|| peer.attach(base)))
            .unwrap_or_else(|_| Err(io::Error::other("the peer panicked while starting")));
        if let Err(e) = attached {
            let _ = started.send(Err(e));
            drop(peer);
            self.free(slot);
            return;
        }
        if self.peers.len() <= slot {
            self.peers.resize_with(slot + 1, || None);
        }
        self.serial += 1;
        self.peers[slot] = Some(Slot { peer, mailbox, done, queued: None, serial: self.serial });
        self.live += 1;
        let _ = started.send(Ok(()));
        turn.push(slot); // its first turn computes when it wakes
    }

    fn run_peer(&mut self, slot: usize, ready: &[Ready], events: &mut Vec<NetEvent>) {
        let Some(Some(p)) = self.peers.get_mut(slot) else {
            return; // events of a peer dropped earlier in this turn, or a stale notification
        };
        let turned = catch_unwind(AssertUnwindSafe(|| {
            let t = p.peer.turn(ready, events);
            (t, p.peer.wake_at())
        }));
        match turned {
            Ok((Turn::Stop, _)) => self.remove(slot),
            Ok((t, at)) => {
                if t == Turn::More {
                    self.again.push(slot);
                }
                if p.queued != Some(at) {
                    p.queued = Some(at);
                    self.timers.push(Reverse((at, slot, p.serial)));
                }
            }
            Err(_) => {
                // The panic's message was printed by the hook. The peer's state may be
                // half-changed: it is dropped unsaved, as a peer whose thread died was.
                log::error!("a peer panicked on its event loop; it is closed, the loop's other peers go on");
                events.clear();
                self.remove(slot);
            }
        }
    }

    /// Drop a peer (its sockets close), then tell its handle.
    fn remove(&mut self, slot: usize) {
        let Some(Slot { peer, mailbox, done, .. }) = self.peers[slot].take() else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| drop(peer))).is_err() {
            log::error!("a peer panicked while being dropped");
        }
        drop(mailbox);
        drop(done);
        self.live -= 1;
        self.free(slot);
    }

    fn free(&mut self, slot: usize) {
        let mut inbox = self.lp.inbox.lock();
        inbox.free.push(slot);
        inbox.live -= 1;
    }

    /// Rebuild the heap from the peers' valid entries (stale ones pile up when deadlines
    /// move later and later).
    fn compact_timers(&mut self) {
        self.timers = self
            .peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().and_then(|p| p.queued.map(|at| Reverse((at, i, p.serial)))))
            .collect();
    }
}

/// A hosted peer's mailbox, closed when the peer is dropped (however: stopped, panicked, or
/// its loop gone), so its handles' later calls are `Error::Closed`.
struct Closing(Arc<Mailbox>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Vectors the loop frees before sleeping once a burst has grown them.
trait Shrink {
    fn shrink(&mut self);
}

impl<T> Shrink for Vec<T> {
    fn shrink(&mut self) {
        if self.is_empty() && self.capacity() > KEEP_BUFFER {
            *self = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::driver::Command;
    use super::super::mailbox::MAX_COMMANDS_PER_TURN;
    use super::super::Node;
    use super::*;
    use crate::id::Id;
    use std::cell::RefCell;
    use std::net::IpAddr;

    thread_local! {
        /// Where this thread's next peers go instead of the least loaded loop.
        pub(super) static FORCED: RefCell<Option<Arc<Loop>>> = const { RefCell::new(None) };
    }

    /// A loop of its own for the peers this thread makes next (`None`: the pool again).
    fn force_private_loop(on: bool) {
        let lp = on.then(|| Loop::start(999).expect("an event loop"));
        FORCED.with(|f| *f.borrow_mut() = lp);
    }

    fn loop_of(n: &Node) -> &Arc<Loop> {
        &n.shared.link.lp
    }

    /// A peer that panics is dropped: its caller and later calls get `Closed`, and `close`
    /// returns. The other peers of its loop go on serving their callers and the network,
    /// TCP and program-supplied transport alike.
    #[test]
    fn a_panicking_peer_leaves_its_loop_running() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        force_private_loop(true);
        let a = Node::new(Id([1; 32]), ip, 0, 5).unwrap();
        let b = Node::new(Id([2; 32]), ip, 0, 5).unwrap();
        let ext = Node::new_external(Id([3; 32]), Some("127.0.0.1:4000".parse().unwrap()), 5).unwrap();
        force_private_loop(false);
        assert!(Arc::ptr_eq(loop_of(&a), loop_of(&b)) && Arc::ptr_eq(loop_of(&a), loop_of(&ext)));
        a.connect(ip, b.port()).unwrap();
        let key = a.set(b"stored before the panic").unwrap();

        let (tx, rx) = bounded(1);
        a.send(Command::Panic(tx)).unwrap();
        assert!(rx.recv().is_err(), "the caller waiting on the panicking peer hears of it");
        assert!(matches!(a.stats(), Err(Error::Closed)));
        assert!(matches!(a.get(&key), Err(Error::Closed)));
        a.close(); // returns: the peer is gone already

        assert_eq!(b.get(&key).unwrap().as_deref(), Some(&b"stored before the panic"[..]));
        let c = Node::new(Id([4; 32]), ip, 0, 5).unwrap();
        c.connect(ip, b.port()).unwrap();
        assert_eq!(c.get(&key).unwrap().as_deref(), Some(&b"stored before the panic"[..]));
        assert!(ext.stats().is_ok());
        let (from, mut msg, mut env) = ("127.0.0.1:9".parse().unwrap(), Vec::new(), Vec::new());
        crate::wire::encode_request(&crate::wire::Request::Peers { key: Id([8; 32]) }, &mut msg);
        crate::wire::encode_envelope(from, &msg, &mut env);
        ext.ext_push_envelope(&env).unwrap();
        let answer = ext.ext_pop_envelope(Duration::from_secs(5)).unwrap();
        assert_eq!(answer.map(|(to, _)| to), Some(from), "the external peer answers");
    }

    /// A peer whose callers queued more commands than a turn takes answers
    /// `MAX_COMMANDS_PER_TURN` of them and asks for another turn (the loop's other peers run
    /// in between), then the rest.
    #[test]
    fn a_turn_takes_a_bounded_number_of_commands() {
        use super::super::{driver::Clock, tcp::TcpPeer};
        use crate::core::{Core, CoreConfig};
        use crate::net::{Net, NetConfig};
        use crate::store::MemStore;
        let net = Net::new(NetConfig::new("127.0.0.1:0".parse().unwrap(), [1; 32])).unwrap();
        let uid = Id([5; 32]);
        let cfg = CoreConfig::new(uid, 5, Some(net.local_addr().port()), net.static_public(), 1);
        let clock = Clock::new();
        let core = Core::new(cfg, Box::new(MemStore::new(uid)), clock.now());
        let mailbox = Arc::new(Mailbox::default());
        let mut peer = TcpPeer::new(net, core, mailbox.clone(), clock, None);
        let answers: Vec<_> = (0..MAX_COMMANDS_PER_TURN + 1)
            .map(|_| {
                let (reply, answer) = bounded(1);
                mailbox.post(Command::Stats(reply)).unwrap();
                answer
            })
            .collect();
        let mut events = Vec::new();
        assert_eq!(peer.turn(&[], &mut events), Turn::More);
        assert!(answers[..MAX_COMMANDS_PER_TURN].iter().all(|a| a.try_recv().is_ok()));
        assert!(answers[MAX_COMMANDS_PER_TURN].try_recv().is_err());
        assert_eq!(peer.turn(&[], &mut events), Turn::Done);
        assert!(answers[MAX_COMMANDS_PER_TURN].try_recv().is_ok());
        mailbox.post(Command::Stop).unwrap();
        assert_eq!(peer.turn(&[], &mut events), Turn::Stop);
    }
}
