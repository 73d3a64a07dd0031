//! What both drivers of a peer share: the commands a `Node` handle sends it, the
//! callers waiting on operations, and the statistics it reports.

use crate::core::{Core, Counters, Op, OpResult, RequestKind};
use crate::id::Id;
use crate::wire::Message;
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Counters a node keeps about itself.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Contacts in the routing table.
    pub contacts: usize,
    /// Values held for others, and their bytes.
    pub values: usize,
    /// Total bytes of the values held.
    pub value_bytes: usize,
    /// Bag entries held, over all keys.
    pub bag_entries: usize,
    /// Namespace records held.
    pub namespace_records: usize,
    /// Requests sent, including introductions and pings.
    pub requests_sent: u64,
    /// Requests that failed.
    pub requests_failed: u64,
    /// Requests received from other peers.
    pub requests_received: u64,
    /// Open connections, both directions (0 on a program-supplied transport).
    pub open_connections: usize,
    /// TCP bytes sent and received, encryption and framing included (0 on a
    /// program-supplied transport).
    pub bytes_sent: u64,
    /// See `bytes_sent`.
    pub bytes_received: u64,
    /// Connections this peer dialed, each starting a handshake (0 on a program-supplied
    /// transport).
    pub handshakes_dialed: u64,
    /// Connections it accepted, each a handshake begun by the other side.
    pub handshakes_accepted: u64,
    /// Handshakes completed, both directions.
    pub handshakes_completed: u64,
    /// Entries of the republish list (what this peer stored itself and republishes).
    pub published: usize,
    /// Republish stores started so far.
    pub republished: u64,
    /// Re-stores of held records started so far (as a holder whose publisher was silent).
    pub restored: u64,
    /// Records handed to newly joined nearer peers so far.
    pub handed_over: u64,
    /// Lookups run to refresh buckets unheard from for an interval.
    pub bucket_refreshes: u64,
    /// Requests sent, failed and received, per kind (`RequestKind::ALL` order).
    pub requests: Counters,
    /// Contacts per bucket: index i holds those sharing exactly i leading bits with our uid,
    /// up to the deepest bucket in use.
    pub buckets: Vec<u32>,
}

impl Stats {
    /// Every figure under its name: the one list the C ABI (peer_stats_list), the Scheme
    /// libraries (`peer-stats`) and the `peer` command show, so the names agree everywhere.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("contacts", self.contacts as u64),
            ("values", self.values as u64),
            ("value-bytes", self.value_bytes as u64),
            ("bag-entries", self.bag_entries as u64),
            ("namespace-records", self.namespace_records as u64),
            ("published", self.published as u64),
            ("open-connections", self.open_connections as u64),
            ("bytes-sent", self.bytes_sent),
            ("bytes-received", self.bytes_received),
            ("handshakes-dialed", self.handshakes_dialed),
            ("handshakes-accepted", self.handshakes_accepted),
            ("handshakes-completed", self.handshakes_completed),
            ("requests-sent", self.requests_sent),
            ("requests-failed", self.requests_failed),
            ("requests-received", self.requests_received),
            ("republished", self.republished),
            ("restored", self.restored),
            ("handed-over", self.handed_over),
            ("bucket-refreshes", self.bucket_refreshes),
        ];
        for (i, names) in KIND_NAMES.iter().enumerate() {
            v.push((names[0], self.requests.sent[i]));
            v.push((names[1], self.requests.failed[i]));
            v.push((names[2], self.requests.received[i]));
        }
        for (i, &n) in self.buckets.iter().enumerate() {
            v.push((BUCKET_NAMES[i], n as u64));
        }
        v
    }
}

/// Per-kind names, `RequestKind::ALL` order: sent-K, failed-K, received-K. Made once from
/// the kinds' wire names, like BUCKET_NAMES: names must be static for the C ABI.
static KIND_NAMES: std::sync::LazyLock<Vec<[&'static str; 3]>> = std::sync::LazyLock::new(|| {
    let leak = |s: String| &*Box::leak(s.into_boxed_str());
    RequestKind::ALL
        .iter()
        .map(|k| {
            [
                leak(format!("sent-{}", k.name())),
                leak(format!("failed-{}", k.name())),
                leak(format!("received-{}", k.name())),
            ]
        })
        .collect()
});

/// "bucket-0" .. "bucket-256", made once: names must be static for the C ABI.
static BUCKET_NAMES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| (0..=256).map(|i| &*Box::leak(format!("bucket-{i}").into_boxed_str())).collect());

pub(crate) enum Command {
    /// Boxed: a command channel's blocks hold many slots, each as large as a command.
    Op(Box<Op>, Sender<OpResult>),
    Stats(Sender<Stats>),
    /// Stop republishing what was stored under a key; answers how many entries left the list.
    Forget(Id, Sender<usize>),
    /// A message that arrived on the program-supplied transport.
    Incoming(SocketAddr, Message),
    Stop,
    /// Tests: panic while handling it (its sender is dropped on the way out).
    #[cfg(test)]
    Panic(Sender<()>),
}

/// What the transport reports for statistics.
#[derive(Clone, Copy, Default)]
pub(crate) struct Link {
    pub open_connections: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub handshakes: crate::net::Handshakes,
}

/// Callers waiting on operations, by the client token the core knows them by.
#[derive(Default)]
pub(crate) struct Clients {
    waiting: HashMap<u64, Sender<OpResult>>,
    next: u64,
}

impl Clients {
    /// Apply a command; false when the loop must stop. Messages from the program's transport
    /// are handed back through `incoming`; `link` reads the transport's figures.
    pub fn command(
        &mut self,
        core: &mut Core,
        now: u64,
        cmd: Command,
        link: impl FnOnce() -> Link,
        incoming: &mut Vec<(SocketAddr, Message)>,
    ) -> bool {
        match cmd {
            Command::Op(op, reply) => {
                self.next += 1;
                self.waiting.insert(self.next, reply);
                core.start(now, self.next, *op);
            }
            Command::Stats(reply) => {
                let _ = reply.send(stats(core, link()));
            }
            Command::Forget(key, reply) => {
                let _ = reply.send(core.forget(&key));
            }
            Command::Incoming(from, msg) => incoming.push((from, msg)),
            Command::Stop => return false,
            #[cfg(test)]
            Command::Panic(_reply) => panic!("a test asked this peer to panic"),
        }
        true
    }

    /// Hand every finished operation's result to its caller.
    pub fn deliver(&mut self, core: &mut Core) {
        while let Some((client, r)) = core.poll_event() {
            if let Some(tx) = self.waiting.remove(&client) {
                let _ = tx.send(r);
            }
        }
    }
}

fn stats(core: &Core, link: Link) -> Stats {
    let (values, value_bytes, bag_entries, namespace_records) = core.store().counts();
    let c = core.counters();
    let m = core.maintenance();
    Stats {
        contacts: core.routing().len(),
        values,
        value_bytes,
        bag_entries,
        namespace_records,
        requests_sent: c.requests_sent(),
        requests_failed: c.requests_failed(),
        requests_received: c.requests_received(),
        requests: c,
        open_connections: link.open_connections,
        bytes_sent: link.bytes_sent,
        bytes_received: link.bytes_received,
        handshakes_dialed: link.handshakes.dialed,
        handshakes_accepted: link.handshakes.accepted,
        handshakes_completed: link.handshakes.completed,
        published: core.published_len(),
        republished: m.republished,
        restored: m.restored,
        handed_over: m.handed_over,
        bucket_refreshes: m.bucket_refreshes,
        buckets: core.routing().bucket_sizes(),
    }
}

/// The core's clock: Unix microseconds at the start plus the monotonic time since, so times
/// saved in a data directory (record expiries) mean the same after a restart, and a wall
/// clock step while running does not move the core's time.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    unix0: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let unix0 = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        Clock { start: Instant::now(), unix0 }
    }

    /// Microseconds: Unix time at the start plus the time elapsed since.
    pub fn now(&self) -> u64 {
        self.unix0 + self.start.elapsed().as_micros() as u64
    }
}
