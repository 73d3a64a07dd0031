//! Every protocol limit in one place, named, so hardening and tuning touch one file.

/// Bucket size, size of a `peers` reply, and the global maximum replication (PROTOCOL.md §1).
pub const K: usize = 20;
/// Requests a lookup keeps in flight at once (PROTOCOL.md §1).
pub const ALPHA: usize = 3;
/// Default replication factor: how many of the nearest peers hold each record.
pub const DEFAULT_REPLICATION: u32 = 5;
/// Smallest replication factor a peer accepts.
pub const MIN_REPLICATION: u32 = 5;
/// Largest replication factor a peer accepts (the global maximum, K).
pub const MAX_REPLICATION: u32 = 20;
/// Length of a uid, key, public key.
pub const ID_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Largest message body on the wire, in bytes (PROTOCOL.md §2).
pub const MAX_MESSAGE: usize = 1_048_576;
/// Largest value `set` accepts: the largest whose worst-case `set` request *and* `value`
/// reply both fit in MAX_MESSAGE. The `set` request is the longer: `#(set #u8(` is 10 bytes,
/// each byte costs at most 4 ("255 ", the last one 3), then `)`, the optional lifetime
/// (` 4294967295`, 11 bytes) and `)`: 10 + 4n - 1 + 1 + 11 + 1 <= MAX_MESSAGE.
pub const MAX_VALUE_SIZE: usize = (MAX_MESSAGE - 22) / 4;
/// Largest value a peer on the program-supplied transport stores (PROTOCOL.md §8). There a
/// message travels inside an envelope, `#(from "ip" port MESSAGE)`, which the program's Scheme
/// serializes itself, and the draft forbids a payload that serializes past 1 MiB. Chibi
/// writes a bytevector's bytes in hex, up to 5 characters each (`#xFF `); Guile and Chez write
/// `#vu8(`. The widest envelope header is 62 bytes (`#(from "` 8, an IPv6 text 45, `" ` 2, the
/// port 5, a space and the closing parenthesis); a `set` with `#vu8(` and a lifetime is
/// 5n + 22 more (11 + 5n - 1 + 1 + 11 + 1 - 1): 5n + 84 in all. With 128 bytes of headroom
/// every message of that peer, as any of the three writes it, stays within 1 MiB.
pub const MAX_EXTERNAL_VALUE_SIZE: usize = (MAX_MESSAGE - 128) / 5;
/// A request unanswered this long has failed (PROTOCOL.md §3), in microseconds.
pub const REQUEST_TIMEOUT_US: u64 = 5_000_000;
/// How long an operation (a whole lookup plus its stores) may run before it gives up.
pub const OP_TIMEOUT_US: u64 = 30_000_000;
/// An idle connection is closed after this long, in microseconds.
pub const IDLE_TIMEOUT_US: u64 = 60_000_000;
/// Open outbound connections one peer keeps at most; the least recently used idle one is
/// closed to make room. Warm connections are what make a request cost one round trip.
pub const MAX_OUTBOUND_CONNECTIONS: usize = 256;
/// Inbound connections one peer accepts at most; the oldest idle one is closed past it.
pub const MAX_INBOUND_CONNECTIONS: usize = 256;
/// All the peers of one process share its file descriptors: past this fraction (percent) of
/// the soft RLIMIT_NOFILE, a peer closes one of its own idle connections before opening
/// another (if it has none, it opens anyway: the budget never refuses a newcomer), so hundreds
/// of peers fit in one process (e.g. 300 under a 20,000 limit).
pub const FD_BUDGET_PERCENT: usize = 75;
/// Requests queued or in flight on one connection at most.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;
/// Requests awaiting a reply from one address of a program-supplied transport, at most.
pub const MAX_EXT_OUTSTANDING: usize = 1024;
/// A bag entry lives this long after its latest publish (like a BitTorrent announce).
pub const BAG_ENTRY_TTL_US: u64 = 30 * 60 * 1_000_000;
/// Entries one key's bag holds at most.
pub const MAX_BAG_ENTRIES_PER_KEY: usize = 1_000;
/// Bag entries one peer holds at most over all keys.
pub const MAX_BAG_ENTRIES_TOTAL: usize = 100_000;
/// Publishers remembered per bag entry (counting distinct publishers beyond this saturates).
pub const MAX_PUBLISHERS_PER_ENTRY: usize = 1_000;
/// Entries a `bag` reply carries at most.
pub const MAX_BAG_REPLY: usize = 20;
/// A value or namespace record lives this long at its holders after its publisher last
/// stored it (libp2p's records live 48 h, BitTorrent's mainline DHT items 2 h; 24 h lets a
/// publisher that is away for most of a day keep its data). Default of `expire_s`.
pub const RECORD_LIFETIME_US: u64 = 24 * 3600 * 1_000_000;
/// The publisher republishes its values and namespace records this often (the Kademlia
/// paper's hour; 24 republishes per lifetime, so a few lost ones cost nothing). Default of
/// `republish_s`; it is also the holders' re-store interval.
pub const REPUBLISH_US: u64 = 3600 * 1_000_000;
/// The publisher re-announces its bag entries this often: a third of their TTL, so one
/// lost announcement does not let an entry expire.
pub const BAG_REPUBLISH_US: u64 = BAG_ENTRY_TTL_US / 3;
/// A bucket no contact of was heard from for this long is refreshed with a lookup.
pub const BUCKET_REFRESH_US: u64 = 3600 * 1_000_000;
/// Entries of one peer's republish list at most; past it the least recently published leaves.
pub const MAX_PUBLISHED: usize = 10_000;
/// Bytes of one peer's republish list at most (values count their length).
pub const MAX_PUBLISHED_BYTES: usize = 64 * 1024 * 1024;
/// Values one peer stores at most.
pub const MAX_VALUES: usize = 100_000;
/// Total bytes of the values one peer stores at most.
pub const MAX_VALUE_BYTES_TOTAL: usize = 512 * 1024 * 1024;
/// Namespace records one peer stores at most.
pub const MAX_NAMESPACE_RECORDS: usize = 100_000;
/// A full bucket pings its oldest contact for a newcomer only when that contact has not
/// been heard from for this long (microseconds); a recently heard contact is alive.
pub const PING_STALE_US: u64 = 60_000_000;
/// Reader limit (PROTOCOL.md §2): nesting depth of vectors.
pub const MAX_DATUM_DEPTH: usize = 8;
/// Reader limit: elements of one vector or bytevector.
pub const MAX_DATUM_ELEMENTS: usize = MAX_MESSAGE;
/// Reader limit: digits of one integer (a 256-bit identifier has 78).
pub const MAX_INTEGER_DIGITS: usize = 80;
/// Storage quotas (SECURITY.md): once a table of held records (values, namespace records) is
/// more than 1/QUOTA_FREE_SHARE full, a new record is refused when its source would hold more
/// than 1/QUOTA_KEY_SHARE of the table's bounds under its static key, or more than
/// 1/QUOTA_PREFIX_SHARE from its network prefix. Below that anyone stores freely, so a small
/// network where one peer publishes everything still works; above it one source (an
/// attacker with one address and any number of keys) can hold about a quarter of a store.
pub const QUOTA_FREE_SHARE: usize = 4;
/// See QUOTA_FREE_SHARE.
pub const QUOTA_KEY_SHARE: usize = 16;
/// See QUOTA_FREE_SHARE.
pub const QUOTA_PREFIX_SHARE: usize = 8;

// Transport hardening (issue 13): what one hostile peer can make a `Net` hold or take.

/// An accepting connection reads no more requests once its unsent replies, plus what the
/// replies to its unanswered requests may add (a whole message for a `ref`, 8 KiB for any
/// other), reach this; it reads on when its dialer has read enough. A connection then holds
/// at most this plus one reply: about 3 MiB.
pub const OUTPUT_PAUSE_BYTES: usize = 2 * 1024 * 1024;
/// A connection whose unsent output passes this is closed. A safety net: the pause keeps
/// replies under about 3 MiB.
pub const OUTPUT_CLOSE_BYTES: usize = 8 * 1024 * 1024;
/// Unsent replies one peer holds over all its connections at most; past it, the connection
/// holding the most is closed.
pub const OUTPUT_BUDGET_BYTES: usize = 32 * 1024 * 1024;
/// Bytes one peer holds in incomplete records and frames over all its connections at most;
/// past it, the connection holding the largest incomplete frame is closed.
pub const PARTIAL_INPUT_BUDGET_BYTES: usize = 32 * 1024 * 1024;
/// Inbound connections one remote address (IPv6: /64) may hold open; past it a new one is
/// closed at accept. Loopback is exempt by default. Default of `NetLimits`.
pub const MAX_INBOUND_PER_IP: usize = 16;
/// Inbound handshakes one remote address may have in progress; past it a new connection is
/// closed at accept. Default of `NetLimits`.
pub const MAX_HANDSHAKES_PER_IP: usize = 8;
/// A connection that answered a request and was used this recently (microseconds) is not
/// closed to make room for an inbound newcomer, which is refused instead.
pub const USEFUL_GRACE_US: u64 = 10_000_000;

// Warm routing contacts (issue 12, part "conn").

/// A connection to a routing contact stays open this many times the idle timeout (30 min by
/// default) while its peer has room: warm contacts make a lookup's first requests cost one
/// round trip instead of three. Dialed connections carry TCP keepalives (`net`), so NATs and
/// load balancers, which drop a silent connection after 4-6 minutes without telling either
/// end, keep them meanwhile, and a contact that vanished is noticed.
pub const CONTACT_IDLE_FACTOR: u32 = 30;
