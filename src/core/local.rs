//! What this peer is, knows and holds: its identity, its routing table, its store and its
//! random generator, with the rules that read them (who is heard from, who is forgotten,
//! whether a store is ours to accept).

use crate::consts::K;
use crate::core::routing::{Insert, RoutingTable};
use crate::core::rpc::{Purpose, Rpc};
use crate::id::{Contact, Id};
use crate::store::Store;
use crate::wire::{BagEntry, BagKind};
use rand::rngs::StdRng;
use rand::Rng;

pub(crate) struct Local {
    pub me: Id,
    /// How many of the nearest peers hold each record (PROTOCOL.md §6).
    pub replication: usize,
    /// Our Noise static public key (all zero on a program-supplied transport).
    pub static_public: [u8; 32],
    pub routing: RoutingTable,
    pub store: Box<dyn Store>,
    pub rng: StdRng,
    /// Longest life a record we store or hold gets (PROTOCOL.md §6), in microseconds.
    pub lifetime_us: u64,
    /// Largest value we store for others (CoreConfig::max_value).
    pub max_value: usize,
    /// Contacts newly added to the routing table, for maintenance to hand records to.
    pub joined: Vec<Contact>,
    /// Contacts dropped from the routing table (they failed us), for maintenance to restore
    /// the records they held.
    pub departed: Vec<Id>,
}

/// The whole seconds a record expiring at `expires_at` has left at `now`: the `lifetime`
/// a re-store carries (PROTOCOL.md §6), never more than the record has.
pub(crate) fn lifetime_left(expires_at: u64, now: u64) -> u32 {
    u32::try_from(expires_at.saturating_sub(now) / 1_000_000).unwrap_or(u32::MAX)
}

/// New (or departed) contacts remembered for a handover (or a restore) at most; past it they
/// wait for the periodic re-store (a burst of joins, e.g. our own bootstrap, when we hold
/// little anyway).
const MAX_JOINED: usize = 256;

/// Introductions of contacts that introduced themselves (`iam`) awaiting their answer, at
/// most: in all, and from one IP address (counted by `Diversity`). Past either, an `iam` is
/// answered but its contact is not checked (it will introduce itself again).
const MAX_VERIFYING: usize = 64;
const MAX_VERIFYING_PER_IP: usize = 4;

impl Local {
    /// `c` proved itself (it answered our `iam` at its address, with its key, as its uid):
    /// keep it in the routing table, pinging the oldest contact of a full bucket to decide who
    /// stays (PROTOCOL.md §5).
    pub fn heard_from(&mut self, rpc: &mut Rpc, c: Contact, now: u64) -> Insert {
        let r = self.routing.insert(c, now);
        if r == Insert::Added {
            log::info!("{:?}: contact {:?} at {} joined the routing table", self.me, c.id, c.addr);
        }
        match r {
            Insert::Ping(old) => {
                let iam = rpc.iam();
                rpc.send(now, Purpose::Ping, old, iam);
            }
            // Only a peer holding records has anything to hand over.
            Insert::Added if self.joined.len() < MAX_JOINED && self.holds_records() => self.joined.push(c),
            _ => {}
        }
        r
    }

    /// `c` answered a request: if the routing table holds exactly it, it was heard from now;
    /// if it proved itself earlier (`Rpc::is_proven`), it may join. Anything else about it
    /// (a new uid, address or key) is unproven and changes nothing.
    pub fn refresh(&mut self, rpc: &mut Rpc, c: Contact, now: u64) {
        if self.routing.get(&c.id) == Some(c) {
            self.routing.insert(c, now);
        } else if rpc.is_proven(&c) {
            self.heard_from(rpc, c, now);
        }
    }

    /// `c` introduced itself (`iam` on a connection authenticated with its key, from its
    /// address): a contact we hold exactly is refreshed; any other is asked to prove its
    /// address by answering our `iam` there (`Purpose::Introduce`; its `welcome` with its uid
    /// makes it `heard_from`). Nonsense is ignored, and the introductions in flight are
    /// bounded in all and per address, so a flood of claimed contacts costs a few dials.
    pub fn introduced_itself(&mut self, rpc: &mut Rpc, c: Contact, now: u64) {
        if c.id == self.me || c.id == Id::ZERO || c.addr.port() == 0 || c.addr.ip().is_unspecified() {
            return;
        }
        match self.routing.get(&c.id) {
            Some(known) if known == c => {
                self.routing.insert(c, now);
                return;
            }
            // Bound to another key: it cannot prove itself.
            Some(known) if known.static_key != c.static_key => return,
            _ => {}
        }
        // Proved already (its bucket may have been full then): no new check. Our check is
        // itself an `iam`, so checking again would have two peers with full buckets check
        // each other for ever.
        if rpc.is_proven(&c) {
            self.heard_from(rpc, c, now);
            return;
        }
        if !self.routing.has_room_for(&c, now) {
            return;
        }
        let d = *self.routing.diversity();
        let ip = c.addr.ip();
        let from_ip = if d.counts(ip) { rpc.verifying(|v| v.addr.ip() == ip) } else { 0 };
        if rpc.verifying(|v| v.id == c.id) > 0 || rpc.verifying(|_| true) >= MAX_VERIFYING || from_ip >= MAX_VERIFYING_PER_IP {
            return;
        }
        rpc.introduce(now, c);
    }

    /// Drop a contact that failed us, but only the one we know: a failure reaching a uid at
    /// an address or key someone else named must not evict the real contact.
    pub fn forget(&mut self, c: &Contact) {
        if self.routing.get(&c.id) == Some(*c) {
            log::info!("{:?}: contact {:?} at {} failed and left the routing table", self.me, c.id, c.addr);
            self.routing.remove(&c.id);
            self.departed(c.id);
        }
    }

    /// Whether we hold any value or namespace record for others.
    fn holds_records(&self) -> bool {
        let (values, _, _, records) = self.store.counts();
        values + records > 0
    }

    /// `id` left the routing table: remember it for maintenance (bounded like `joined`).
    pub fn departed(&mut self, id: Id) {
        if self.departed.len() < MAX_JOINED && self.holds_records() {
            self.departed.push(id);
        }
    }

    /// A store is accepted only by one of the K nearest peers we know, us included
    /// (PROTOCOL.md §6).
    pub fn accepts(&self, target: &Id) -> bool {
        self.routing.nearer_than_me(target, K) < K
    }

    /// Contacts named in a reply, each replaced by the contact we already know under its uid:
    /// a reply naming a known uid at another address or key must not steer a lookup there.
    pub fn known(&self, named: Vec<Contact>) -> impl Iterator<Item = Contact> + '_ {
        named.into_iter().map(|c| self.routing.get(&c.id).unwrap_or(c))
    }

    /// At most `max` entries of our own bag `key`, in the order `kind` asks for.
    pub fn bag(&mut self, kind: BagKind, key: &Id, max: usize, now: u64) -> Vec<BagEntry> {
        let rng = &mut self.rng;
        self.store.bag_query(key, kind, max, now, &mut || rng.gen())
    }

    /// When a record stored at `now` with `lifetime` seconds left (None: the full lifetime)
    /// expires here: never later than our own lifetime allows.
    pub fn expiry(&self, now: u64, lifetime: Option<u32>) -> u64 {
        let full = self.lifetime_us;
        let asked = lifetime.map_or(full, |s| (s as u64).saturating_mul(1_000_000));
        now.saturating_add(asked.min(full))
    }

    /// Who we are as a bag publisher: our static key, or our uid on a program-supplied
    /// transport (which has no keys).
    pub fn publisher(&self) -> [u8; 32] {
        if self.static_public == [0; 32] {
            self.me.0
        } else {
            self.static_public
        }
    }
}
