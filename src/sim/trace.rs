//! Where an operation's time goes: its critical path. Every event one traced peer handles is a
//! node; a reply's node hangs off the node of the event that sent the request (the core sends
//! in response to an event), any other event's node (a timer, a failure, a request it
//! answers) off the peer's previous node. When the operation finishes, the chain from the
//! finishing event back to its start is the path that took all its time, and each link of it
//! says what that time was: round trips on the wire, connection set-up (TCP and handshake
//! round trips, waiting for one), CPU (queueing, coding, handshake crypto), and waiting on
//! timers. A wait that ends on one of the core's marks of a request the peer sent is told
//! apart by the mark: the lookup's straggler mark (a slow request stops holding a slot, so
//! the next contact is asked), its abandon mark (it stops holding up the lookup's end), the
//! request timeout (it fails); the last two are what a contact that never answers costs.

use crate::consts::REQUEST_TIMEOUT_US;
use crate::core::Marks;

/// An operation's time along its critical path (µs), and what it was made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Path {
    /// Requests answered along the path (each one round trip on the wire).
    pub round_trips: u32,
    /// Of those, the ones that opened a connection first.
    pub cold: u32,
    /// Links that ended on a timer or a failure, not a reply.
    pub waits: u32,
    /// Round-trip time of the answered requests.
    pub rtt_us: u64,
    /// Connection set-up ahead of them: TCP's round trip, the handshake's, waiting for it.
    pub setup_us: u64,
    /// The part of it ahead of the first answer on the path: requests the operation sent at
    /// its start, to contacts of the caller's own routing table.
    pub first_setup_us: u64,
    /// CPU: queueing and work at both ends.
    pub cpu_us: u64,
    /// Time waiting on timers and failures, all of it; then the part of it that ended on a
    /// straggler mark, on an abandon mark, on a request timeout.
    pub wait_us: u64,
    pub straggler_us: u64,
    pub abandon_us: u64,
    pub timeout_us: u64,
}

impl Path {
    pub fn total_us(&self) -> u64 {
        self.rtt_us + self.setup_us + self.cpu_us + self.wait_us
    }
}

struct Node {
    parent: Option<u32>,
    at: u64,
    /// What the time since the parent was.
    part: Path,
}

/// A reference to a node, good for one traced operation (`begin` starts another).
pub type Cause = u64;
/// No node: not traced.
pub const NONE: Cause = 0;

/// The nodes of the traced peer since its last operation began.
#[derive(Default)]
pub struct Trace {
    pub peer: Option<usize>,
    nodes: Vec<Node>,
    generation: u32,
    last: Option<u32>,
    /// The node of the event being handled: the cause of what the peer sends meanwhile.
    pub current: Cause,
    /// The core's marks of each request the traced peer sent in this operation: straggler,
    /// due, abandon, request timeout.
    sent: Vec<[u64; 4]>,
}

impl Trace {
    fn cause(&self, i: u32) -> Cause {
        (u64::from(self.generation) << 32) | u64::from(i + 1)
    }

    fn index(&self, c: Cause) -> Option<u32> {
        ((c >> 32) as u32 == self.generation && c & 0xffff_ffff != 0).then(|| (c & 0xffff_ffff) as u32 - 1)
    }

    fn push(&mut self, parent: Option<u32>, at: u64, part: Path) -> Cause {
        self.nodes.push(Node { parent, at, part });
        let i = self.nodes.len() as u32 - 1;
        self.last = Some(i);
        self.current = self.cause(i);
        self.current
    }

    /// The traced peer starts an operation at `now`: forget the previous one's nodes.
    pub fn begin(&mut self, now: u64) {
        self.nodes.clear();
        self.sent.clear();
        self.generation = self.generation.wrapping_add(1).max(1);
        self.push(None, now, Path::default());
    }

    /// The reply to a request sent at node `cause` is handled at `now`: `rtt` on the wire,
    /// `cpu` of work and queueing on the way, the rest set-up.
    pub fn reply(&mut self, cause: Cause, now: u64, rtt: u64, cpu: u64, cold: bool) {
        let Some(p) = self.index(cause) else { return self.other(now) };
        let gap = now.saturating_sub(self.nodes[p as usize].at);
        let (rtt, cpu) = (rtt.min(gap), cpu.min(gap - rtt.min(gap)));
        let setup = gap - rtt - cpu;
        let part = Path {
            round_trips: 1,
            cold: cold as u32,
            rtt_us: rtt,
            cpu_us: cpu,
            setup_us: setup,
            first_setup_us: if p == 0 { setup } else { 0 },
            ..Path::default()
        };
        self.push(Some(p), now, part);
    }

    /// The traced peer sends a request at `now`, with the core's `marks` for it.
    pub fn sent(&mut self, now: u64, marks: Option<Marks>) {
        if let (Some(_), Some(m)) = (self.last, marks) {
            self.sent.push([m.straggle, m.due, m.abandon, now + REQUEST_TIMEOUT_US]);
        }
    }

    /// A wait of `gap` that ended at `now`, told apart by the mark it ended on.
    fn wait(&self, now: u64, gap: u64) -> Path {
        let on = |i: usize| self.sent.iter().any(|m| m[i] == now);
        let mut w = Path { waits: 1, wait_us: gap, ..Path::default() };
        if on(3) {
            w.timeout_us = gap;
        } else if on(2) {
            w.abandon_us = gap;
        } else if on(0) || on(1) {
            w.straggler_us = gap;
        }
        w
    }

    /// The request sent at node `cause` failed at `now` (its connection closed): waited.
    pub fn failed(&mut self, cause: Cause, now: u64) {
        let Some(p) = self.index(cause) else { return self.other(now) };
        let gap = now.saturating_sub(self.nodes[p as usize].at);
        let w = self.wait(now, gap);
        self.push(Some(p), now, w);
    }

    /// Any other event at `now` (a timer, a request to answer): waited since the last one.
    pub fn other(&mut self, now: u64) {
        match self.last {
            Some(p) => {
                let gap = now.saturating_sub(self.nodes[p as usize].at);
                let w = self.wait(now, gap);
                self.push(Some(p), now, w);
            }
            None => self.current = NONE,
        }
    }

    /// The path from the operation's start to the current node.
    pub fn path(&self) -> Path {
        let mut sum = Path::default();
        let mut at = self.index(self.current);
        while let Some(i) = at {
            let n = &self.nodes[i as usize];
            sum.round_trips += n.part.round_trips;
            sum.cold += n.part.cold;
            sum.waits += n.part.waits;
            sum.rtt_us += n.part.rtt_us;
            sum.setup_us += n.part.setup_us;
            sum.first_setup_us += n.part.first_setup_us;
            sum.cpu_us += n.part.cpu_us;
            sum.wait_us += n.part.wait_us;
            sum.straggler_us += n.part.straggler_us;
            sum.abandon_us += n.part.abandon_us;
            sum.timeout_us += n.part.timeout_us;
            at = n.parent;
        }
        sum
    }
}
