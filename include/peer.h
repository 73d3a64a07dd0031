/*
 * libpeer: a Kademlia-style encrypted peer-to-peer network.
 *
 * API conventions:
 * - Status-returning calls give 0 on success, 1 for "not found", a negative PEER_ERR_*
 *   on error; peer_strerror names a status, peer_last_error explains this thread's last
 *   failure.
 * - Out-parameters are written only on success. Pointer parameters marked "read" are only
 *   read; fixed-size ones (uids, keys, values: 32 bytes; signatures: 64) must hold that many.
 * - A `struct peer *` comes from peer_new / peer_new_external and is released with peer_free;
 *   peer_free(NULL) is a no-op; a call on a freed handle returns PEER_ERR_CLOSED (-4).
 * - Buffers libpeer allocates are released with peer_bytes_free and the documented length.
 * - Every call is blocking and thread-safe.
 */

#ifndef PEER_H
#define PEER_H

/* Generated from src/ffi/ and src/status/table.rs by cbindgen via build.rs. Do not edit. */

#include <stddef.h>
#include <stdint.h>
#define PEER_VERSION_MAJOR 0
#define PEER_VERSION_MINOR 1
#define PEER_VERSION_PATCH 0
#define PEER_VERSION_STRING "0.1.0"
/*
 * Growable structs are initialised with their size as the caller was compiled, so libpeer
 * never writes past a struct built against an older, shorter header.
 */
#define peer_options_init(o) peer_options_init_sized((o), sizeof *(o))
#define peer_stats_init(s) peer_stats_init_sized((s), sizeof *(s))

/**
 * Largest value peer_set accepts, in bytes.
 */
#define PEER_MAX_VALUE_SIZE 262138

/**
 * Largest value peer_set accepts on a peer made by peer_new_external, in bytes: lower, so
 * that every message of such a peer fits 1 MiB inside the program's envelope, as any
 * Scheme writes it.
 */
#define PEER_MAX_EXTERNAL_VALUE_SIZE 209689

/**
 * Length of a uid, key, public key, secret key and bag value, in bytes.
 */
#define PEER_KEY_LEN 32

/**
 * Length of a namespace signature, in bytes.
 */
#define PEER_SIGNATURE_LEN 64

/**
 * Size of the buffer peer_ext_pop and peer_address write an IP text into.
 */
#define PEER_IP_BUF_LEN 64

/**
 * Status: success.
 */
#define PEER_OK 0

/**
 * Status: the key, record or value was not found (not an error).
 */
#define PEER_NOT_FOUND 1

/**
 * Status: a required pointer argument was NULL.
 */
#define PEER_ERR_NULL -1

/**
 * Status: an invalid argument (replication outside 5..20, unparsable IP address, ...).
 */
#define PEER_ERR_INVALID -2

/**
 * Status: a value longer than PEER_MAX_VALUE_SIZE.
 */
#define PEER_ERR_TOO_LARGE -3

/**
 * Status: the peer handle is freed, unknown, or its peer has stopped.
 */
#define PEER_ERR_CLOSED -4

/**
 * Status: the operating system refused something (bind, socket, thread).
 */
#define PEER_ERR_OS -5

/**
 * Status: no peer could be reached (connect failed, `_at` uid not found, empty table).
 */
#define PEER_ERR_UNREACHABLE -6

/**
 * Status: no peer accepted the store.
 */
#define PEER_ERR_NOT_STORED -7

/**
 * Status: the namespace secret key does not belong to the given public key.
 */
#define PEER_ERR_KEY_MISMATCH -8

/**
 * Status: an internal error (a bug in libpeer; the call had no effect on the caller's memory).
 */
#define PEER_ERR_INTERNAL -9

/**
 * Status: a message handed in (peer_ext_push, peer_wire_normalize) is malformed.
 */
#define PEER_ERR_MALFORMED -10

/**
 * Status: the data directory is held by another live peer (in this or another process).
 */
#define PEER_ERR_BUSY -11

/**
 * Status: the data directory could not be read or written (a damaged or foreign store).
 */
#define PEER_ERR_STORAGE -12

/**
 * A peer handle: an opaque token, never dereferenced and never reused. Create one with
 * peer_new or peer_new_external, release it with peer_free.
 */
struct peer;

/**
 * How peer_new_with makes a peer. Fill it with peer_options_init, then set what you need.
 * Zero fields take the default. Fields added in later versions go at the end: `size` (set
 * by peer_options_init to sizeof(struct peer_options)) tells libpeer how many the caller's
 * struct has, and the fields past it take their defaults.
 */
struct peer_options {
  /**
   * sizeof(struct peer_options), as the caller was compiled: set by peer_options_init.
   */
  size_t size;
  /**
   * How many of the nearest peers hold each record: 5..20; 0: the default, 5.
   */
  uint32_t replication;
  /**
   * NUL-terminated path of the peer's data directory (created if missing; read, not
   * kept); NULL: nothing is persisted.
   */
  const char *data_dir;
  /**
   * How often the peer republishes what it stored, in seconds; 0: the default, 3600.
   */
  uint32_t republish_s;
  /**
   * How long values and namespace records live after their publisher's last store, in
   * seconds; 0: the default, 86400.
   */
  uint32_t expire_s;
  /**
   * The address limits (SECURITY.md: contacts, holders, stored records and connections
   * per IP address and per /24 or /48): 0, the default, counts every address but
   * loopback ones (a local test network on one address works); 1 counts loopback too
   * (a test network spread over 127.x.y.z); 2 turns the limits off. Other values: -2.
   */
  uint32_t address_limits;
};

/**
 * A peer's main counters (peer_stats). Growable: set `size` with peer_stats_init first;
 * peer_stats fills only the fields `size` covers, so a program built against an older,
 * shorter struct keeps working, and fields are only ever added at the end.
 */
struct peer_stats {
  /**
   * sizeof(struct peer_stats), set by peer_stats_init.
   */
  size_t size;
  /**
   * Contacts in the routing table.
   */
  uint64_t contacts;
  /**
   * Values stored here, and their total bytes.
   */
  uint64_t values;
  uint64_t value_bytes;
  /**
   * Bag entries stored here over all keys.
   */
  uint64_t bag_entries;
  /**
   * Namespace records stored here.
   */
  uint64_t namespace_records;
  /**
   * Requests this peer sent, those that failed, and those it received.
   */
  uint64_t requests_sent;
  uint64_t requests_failed;
  uint64_t requests_received;
  /**
   * Open connections, both directions.
   */
  uint64_t open_connections;
  /**
   * TCP bytes sent and received, encryption and framing included (0 on a
   * program-supplied transport).
   */
  uint64_t bytes_sent;
  uint64_t bytes_received;
  /**
   * Entries of this peer's republish list (what it stored itself).
   */
  uint64_t published;
  /**
   * Maintenance so far: republishes started, re-stores as a holder, records handed to
   * newly joined nearer peers, bucket refresh lookups.
   */
  uint64_t republished;
  uint64_t restored;
  uint64_t handed_over;
  uint64_t bucket_refreshes;
};

/**
 * One named figure (peer_stats_list).
 */
struct peer_stat {
  /**
   * Static, NUL-terminated; never freed by the caller.
   */
  const char *name;
  uint64_t value;
};

/**
 * Receives one log line: `level` 1 error .. 5 trace, `target` the libpeer module
 * ("peer::core::local", ...), `message` the line without a newline; both strings are valid
 * only during the call. `user` is what peer_log_callback was given. It runs on whichever
 * libpeer thread logs, possibly several at once, and must not call back into libpeer.
 */
typedef void (*peer_log_fn)(int level, const char *target, const char *message, void *user);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Create a peer on the built-in encrypted TCP transport, listening on `ip`:`port`.
 *
 * `uid`: 32 bytes, read. `ip`: NUL-terminated IPv4 or IPv6 address text, or a host name
 * (its first IPv4 address, else its first address), read. `port` 0 picks an ephemeral port
 * (see peer_port). `replication`: 5..20 (5 is the usual value).
 * On success `*out` receives a new handle that the caller owns and releases with peer_free;
 * on failure `*out` is untouched.
 * Returns 0 ok; -1 uid, ip or out is NULL; -2 replication out of range, or ip neither an IP
 * address nor a resolvable host name; -5 the OS refused (address in use, ...); -9 internal error.
 */
int peer_new(const uint8_t *uid,
             const char *ip,
             uint16_t port,
             uint32_t replication,
             struct peer **out);

/**
 * Fill the caller's `*o` of `size` bytes (its `sizeof(struct peer_options)`) with the
 * defaults (all zero, no data directory) and set `o->size` to `size`: nothing past `size`
 * is written, so a program built against an older, shorter struct stays safe. C programs
 * call it through the header's `peer_options_init(o)` macro, which passes `sizeof *(o)`.
 * `o` is the caller's (stack or heap); libpeer keeps no pointer to it.
 * Returns 0 ok; -1 o is NULL; -2 size is smaller than the `size` field.
 */
int peer_options_init_sized(struct peer_options *o, size_t size);

/**
 * Create a peer on the built-in encrypted TCP transport with options (see struct
 * peer_options); `o` NULL means all defaults.
 *
 * `uid`: 32 bytes, read; NULL: the uid saved in `o->data_dir`, else a fresh random one (saved
 * there when there is a data directory). With a data directory the peer resumes its saved
 * uid, Noise key, routing contacts (it rejoins without a bootstrap address), held records and
 * republish list. `ip`, `port`, `out` and ownership as for peer_new.
 * Returns 0 ok; -1 ip or out is NULL; -2 an option out of range, or `uid` differs from the
 * one saved in the data directory; -5 the OS refused (address in use, directory not
 * creatable, ...); -11 another live peer holds the data directory; -12 the data directory
 * cannot be read (damaged, or not libpeer's); -9 internal error.
 */
int peer_new_with(const uint8_t *uid,
                  const char *ip,
                  uint16_t port,
                  const struct peer_options *o,
                  struct peer **out);

/**
 * Stop republishing what this peer stored under the 32-byte `key` (read): the value whose
 * key it is, its entries in the bag `key`, and its namespace records under `key` (any
 * public key). Copies at their holders live out their lifetime (struct peer_options
 * `expire_s`), then disappear.
 * Returns 0 forgotten; 1 nothing under `key` was being republished; -1 p or key is NULL;
 * -4 peer is closed.
 */
int peer_forget(struct peer *p, const uint8_t *key);

/**
 * Create a peer on a program-supplied transport: it opens no sockets. `ip`:`port` is its
 * address on the program's network; `ip` NULL: an address derived from the whole uid (an
 * IPv6 unique local address `fd..` and a port, from SHA-256 of the uid; `port` is then
 * ignored; read it with peer_address). The program moves its messages with peer_ext_pop and
 * peer_ext_push; blocking calls on it complete only while someone does. It stores values of
 * at most PEER_MAX_EXTERNAL_VALUE_SIZE bytes, so that none of its messages serializes past
 * 1 MiB in the program's envelopes.
 *
 * Arguments, ownership and statuses as for peer_new (`ip` may be NULL; no -5 for a bind).
 */
int peer_new_external(const uint8_t *uid,
                      const char *ip,
                      uint16_t port,
                      uint32_t replication,
                      struct peer **out);

/**
 * Stop a peer, wait until it has stopped and release its handle. NULL is a no-op, and so is a handle
 * already freed. Calls blocked on this handle in other threads return -4; later calls on it
 * return -4 too (handles are never reused).
 */
void peer_free(struct peer *p);

/**
 * The port the peer listens on (the bound port when it was created with port 0; the given
 * port for an external peer). 0 when `p` is NULL or freed.
 */
uint16_t peer_port(const struct peer *p);

/**
 * The peer's address: its IP text, NUL-terminated, into `ip_out` (caller-owned,
 * PEER_IP_BUF_LEN = 64 bytes) and its port into `*port_out`. A TCP peer gives the address it
 * is bound to; an external peer its address on the program's network.
 * Returns 0 ok; -1 p, ip_out or port_out is NULL; -4 peer is closed.
 */
int peer_address(const struct peer *p, char *ip_out, uint16_t *port_out);

/**
 * Copy the peer's 32-byte uid into `uid_out` (caller-owned, 32 bytes).
 * Returns 0 ok; -1 p or uid_out is NULL; -4 peer is closed.
 */
int peer_uid(const struct peer *p, uint8_t *uid_out);

/**
 * Greet the peer at `ip`:`port` and add it to the routing table. `ip` (NUL-terminated,
 * read) is an IP address text or a host name: a name is resolved (getaddrinfo; a name that
 * cannot be one, or ends in `.invalid`, is not looked up) and its addresses of this peer's
 * family are tried in turn.
 * Returns 0 ok; -1 p or ip is NULL; -2 ip is not UTF-8; -4 peer is closed; -6 nobody
 * answered there, or the name resolves to no address this peer can reach.
 */
int peer_connect(struct peer *p, const char *ip, uint16_t port);

/**
 * Fill the routing table by looking up the peer's own uid through the peers it knows.
 * Returns 0 ok; -1 p is NULL; -4 peer is closed; -6 no known peer answered.
 */
int peer_bootstrap(struct peer *p);

/**
 * Store the `len` bytes at `value` (read; NULL allowed when len is 0) at the peers nearest
 * their SHA-256, and write that 32-byte key to `key_out` (caller-owned, 32 bytes).
 * Returns 0 ok; -1 p, value or key_out is NULL; -3 len > PEER_MAX_VALUE_SIZE (checked before
 * any network traffic); -4 peer is closed; -6 no peer reachable; -7 no peer accepted it.
 */
int peer_set(struct peer *p, const uint8_t *value, size_t len, uint8_t *key_out);

/**
 * Fetch the value whose SHA-256 is the 32-byte `key` (read). On 0, `*value_out` receives a
 * buffer allocated by libpeer holding `*len_out` bytes; the caller owns it and releases it
 * with peer_bytes_free(*value_out, *len_out). On any other status nothing is written.
 * Returns 0 found; 1 no peer has it; -1 p, key, value_out or len_out is NULL; -4 peer is
 * closed; -6 no peer reachable.
 */
int peer_ref(struct peer *p, const uint8_t *key, uint8_t **value_out, size_t *len_out);

/**
 * Release a buffer that libpeer allocated (peer_ref, peer_ext_pop, peer_wire_normalize),
 * passing the length that call documents. NULL is a no-op. Never pass memory from
 * elsewhere, a different length, or the same buffer twice.
 */
void peer_bytes_free(uint8_t *bytes, size_t len);

/**
 * Add the 32-byte `value` to the bag `key` (both read) at the key's nearest peers.
 * Returns 0 ok; -1 p, key or value is NULL; -4 peer is closed; -6 no peer reachable;
 * -7 no peer accepted it.
 */
int peer_bag_publish(struct peer *p, const uint8_t *key, const uint8_t *value);

/**
 * The most-published values of the bag `key` (32 bytes, read), merged over the key's
 * nearest peers: at most `cap` values of 32 bytes each are written, most popular first, to
 * `values_out` (caller-owned, cap * 32 bytes; may be NULL only when cap is 0), and their
 * count to `*n_out`. An empty bag gives 0 with *n_out = 0.
 * Returns 0 ok; -1 p, key, n_out (or values_out with cap > 0) is NULL; -4 peer is closed;
 * -6 no peer reachable.
 */
int peer_bag_popular(struct peer *p,
                     const uint8_t *key,
                     uint8_t *values_out,
                     size_t cap,
                     size_t *n_out);

/**
 * As peer_bag_popular, but only the local answer of the peer whose uid is `uid` (32 bytes,
 * read), found through the network. Returns -6 when that peer cannot be found or reached.
 */
int peer_bag_popular_at(struct peer *p,
                        const uint8_t *uid,
                        const uint8_t *key,
                        uint8_t *values_out,
                        size_t cap,
                        size_t *n_out);

/**
 * As peer_bag_popular, but the most recently published values first.
 */
int peer_bag_recent(struct peer *p,
                    const uint8_t *key,
                    uint8_t *values_out,
                    size_t cap,
                    size_t *n_out);

/**
 * As peer_bag_popular_at, but the most recently published values first.
 */
int peer_bag_recent_at(struct peer *p,
                       const uint8_t *uid,
                       const uint8_t *key,
                       uint8_t *values_out,
                       size_t cap,
                       size_t *n_out);

/**
 * As peer_bag_popular, but a random sample of the bag's values.
 */
int peer_bag_sample(struct peer *p,
                    const uint8_t *key,
                    uint8_t *values_out,
                    size_t cap,
                    size_t *n_out);

/**
 * As peer_bag_popular_at, but a random sample of that peer's values.
 */
int peer_bag_sample_at(struct peer *p,
                       const uint8_t *uid,
                       const uint8_t *key,
                       uint8_t *values_out,
                       size_t cap,
                       size_t *n_out);

/**
 * Sign (`key`, `value`) with the Ed25519 `secret` key and store the record at the peers
 * nearest (public_key, key); a later set replaces an earlier one. All four inputs are 32
 * bytes, read. On 0 the 64-byte signature is written to `signature_out` (caller-owned;
 * may be NULL when not wanted).
 * Returns 0 ok; -1 p, secret, public_key, key or value is NULL; -4 peer is closed;
 * -6 no peer reachable; -7 no peer accepted it; -8 `secret` is not the secret key of
 * `public_key` (checked before any network traffic).
 */
int peer_namespace_set(struct peer *p,
                       const uint8_t *secret,
                       const uint8_t *public_key,
                       const uint8_t *key,
                       const uint8_t *value,
                       uint8_t *signature_out);

/**
 * The newest validly signed value under (public_key, key) (32 bytes each, read). On 0 the
 * 32-byte value is written to `value_out` and its 64-byte signature to `signature_out`
 * (both caller-owned; signature_out may be NULL when not wanted).
 * Returns 0 found; 1 no valid record; -1 p, public_key, key or value_out is NULL; -4 peer
 * is closed; -6 no peer reachable.
 */
int peer_namespace_ref(struct peer *p,
                       const uint8_t *public_key,
                       const uint8_t *key,
                       uint8_t *value_out,
                       uint8_t *signature_out);

/**
 * As peer_namespace_ref, but only the local answer of the peer whose uid is `uid` (32
 * bytes, read). Returns -6 when that peer cannot be found or reached, 1 when it has no
 * valid record.
 */
int peer_namespace_ref_at(struct peer *p,
                          const uint8_t *uid,
                          const uint8_t *public_key,
                          const uint8_t *key,
                          uint8_t *value_out,
                          uint8_t *signature_out);

/**
 * As peer_namespace_ref, but only the record whose signature is exactly the 64 bytes at
 * `signature` (read) is accepted. Returns 1 when no peer has that record.
 */
int peer_namespace_ref_pinned(struct peer *p,
                              const uint8_t *public_key,
                              const uint8_t *key,
                              const uint8_t *signature,
                              uint8_t *value_out);

/**
 * As peer_namespace_ref_at, but only the record whose signature is exactly the 64 bytes at
 * `signature` (read) is accepted. Returns 1 when that peer does not have that record.
 */
int peer_namespace_ref_at_pinned(struct peer *p,
                                 const uint8_t *uid,
                                 const uint8_t *public_key,
                                 const uint8_t *key,
                                 const uint8_t *signature,
                                 uint8_t *value_out);

/**
 * Write a fresh Ed25519 key pair: 32-byte secret to `secret_out`, 32-byte public key to
 * `public_out` (both caller-owned). Writes nothing if either is NULL.
 */
void peer_keypair(uint8_t *secret_out, uint8_t *public_out);

/**
 * Write 32 random bytes, a fresh uid, to `uid_out` (caller-owned). NULL writes nothing.
 */
void peer_random_uid(uint8_t *uid_out);

/**
 * A short static description of a status code ("ok", "not found", "peer is closed", ...;
 * "unknown status" for other numbers). Never NULL; the caller must not free it.
 */
const char *peer_strerror(int status);

/**
 * The stable symbol of a status: "ok", "not-found", "null", "invalid", "too-large",
 * "closed", "os", "unreachable", "not-stored", "key-mismatch", "internal", "malformed"
 * (lower case, words joined by '-'), so that bindings can match statuses by name instead
 * of copying numbers. A status keeps its number and its symbol forever; a new status adds
 * a new number and symbol. Static, never freed by the caller; NULL when `status` is not a
 * status number.
 */
const char *peer_status_symbol(int status);

/**
 * The number of statuses libpeer defines (PEER_OK, PEER_NOT_FOUND and every PEER_ERR_*):
 * the capacity peer_status_codes needs. It only grows from one release to the next.
 */
size_t peer_status_count(void);

/**
 * Write every status number libpeer defines to `codes_out` (caller-owned, room for `cap`
 * ints): PEER_OK, PEER_NOT_FOUND, then the errors from -1 down, and their count (that is,
 * peer_status_count()) to `*n_out`. With peer_status_symbol, a binding builds its
 * number <-> symbol table from the library it loaded.
 * Returns 0 ok; -1 codes_out or n_out is NULL; -2 cap is less than peer_status_count()
 * (nothing written).
 */
int peer_status_codes(int *codes_out, size_t cap, size_t *n_out);

/**
 * The message of this thread's last failed call ("" if none yet), saying which function
 * failed and why. Owned by libpeer and valid until this thread's next libpeer call; copy it
 * to keep it. Never NULL.
 */
const char *peer_last_error(void);

/**
 * peer_last_error's message without its leading "function: ": the reason alone ("invalid
 * argument: ...", "" if none yet), for a binding that reports errors under its own
 * procedure's name. Same ownership and lifetime as peer_last_error. Never NULL.
 */
const char *peer_last_error_reason(void);

/**
 * PEER_MAX_EXTERNAL_VALUE_SIZE, for bindings that cannot read macros.
 */
size_t peer_max_external_value_size(void);

/**
 * PEER_MAX_VALUE_SIZE, for bindings that cannot read macros.
 */
size_t peer_max_value_size(void);

/**
 * The library's version, "MAJOR.MINOR.PATCH" (static, never NULL; do not free). Compare with
 * the PEER_VERSION_* macros to detect a header/library mismatch.
 */
const char *peer_version(void);

/**
 * Zero the caller's `*s` of `size` bytes (its `sizeof(struct peer_stats)`) and set
 * `s->size` to `size`, writing nothing past it. C programs call it through the header's
 * `peer_stats_init(s)` macro, which passes `sizeof *(s)`. Call it before peer_stats.
 * Returns 0 ok; -1 s is NULL; -2 size is smaller than the `size` field.
 */
int peer_stats_init_sized(struct peer_stats *s, size_t size);

/**
 * Fill the fields of `*out` (caller-owned) that `out->size` covers with the peer's counters
 * (`size` itself is left as it is).
 * Returns 0 ok; -1 p or out is NULL; -2 out->size is too small for any field (use
 * peer_stats_init); -4 peer is closed.
 */
int peer_stats(const struct peer *p, struct peer_stats *out);

/**
 * Every figure of the peer by name, the names the Scheme `peer-stats` and the `peer`
 * command use: the fields of struct peer_stats (`contacts`, `value-bytes`, ...), requests
 * per kind (`sent-set`, `failed-ref`, `received-iam`, ... for iam, peers, set, ref, bag-add,
 * bag-query, namespace-set, namespace-ref) and contacts per routing bucket (`bucket-i`: those
 * sharing exactly i leading bits with the peer's uid, up to its deepest bucket). Writes the
 * first min(cap, n) of them to `out` (caller-owned, room for `cap`; names are static) and n
 * to `*n_out`: call with cap 0 to learn n (it grows with the routing table).
 * Returns 0 ok; -1 p or n_out is NULL, or out is NULL with cap > 0; -4 peer is closed.
 */
int peer_stats_list(const struct peer *p, struct peer_stat *out, size_t cap, size_t *n_out);

/**
 * Hand an external peer one envelope that arrived for it: the `len` bytes at `envelope`
 * (read; the caller keeps ownership), the datum text `#(from "ip" port MESSAGE)` where
 * ip:port is the sender's address on the program's network.
 * Returns 0 accepted; -1 p or envelope is NULL; -4 peer is closed; -10 the envelope or its
 * message is malformed; -2 the peer is not an external one.
 */
int peer_ext_push(struct peer *p, const uint8_t *envelope, size_t len);

/**
 * Take the next envelope an external peer wants sent, waiting at most `timeout_ms`. On 0:
 * the destination's IP text, NUL-terminated, is written to `ip_out` (caller-owned,
 * PEER_IP_BUF_LEN = 64 bytes), its port to `*port_out`, and `*envelope_out` receives a
 * libpeer-allocated buffer of `*len_out` bytes (the datum text `#(from "ip" port MESSAGE)`,
 * from = this peer) that the caller delivers to that address and then releases with
 * peer_bytes_free(*envelope_out, *len_out).
 * Returns 0 got one; 1 none within timeout_ms (nothing written); -1 an argument is NULL;
 * -4 peer is closed; -2 the peer is not an external one.
 */
int peer_ext_pop(struct peer *p,
                 uint32_t timeout_ms,
                 char *ip_out,
                 uint16_t *port_out,
                 uint8_t **envelope_out,
                 size_t *len_out);

/**
 * Diagnostic: read one message text (the `len` bytes at `text`, read) with libpeer's safe
 * reader and write it back in libpeer's canonical text. On 0 `*out` receives a
 * libpeer-allocated, NUL-terminated buffer of `*len_out` bytes plus the NUL; release it with
 * peer_bytes_free(*out, *len_out + 1).
 * Returns 0 ok; -1 text (with len > 0), out or len_out is NULL; -10 unreadable.
 */
int peer_wire_normalize(const uint8_t *text, size_t len, uint8_t **out, size_t *len_out);

/**
 * Log up to `level`: 0 off (the default), 1 error, 2 warn, 3 info (peers joining and
 * leaving routing tables, maintenance), 4 debug (failed requests, closed connections),
 * 5 trace. Lines go to the callback of peer_log_callback, else to stderr. Process-wide.
 * Returns the level now in force (a number above 5 means 5; below 0, 0).
 */
int peer_log_level(int level);

/**
 * Send log lines to `f` (with `user`, which libpeer passes back and never touches) instead
 * of stderr; `f` NULL goes back to stderr. Process-wide; takes effect for the next line.
 * Lines flow only once peer_log_level has turned logging on.
 */
void peer_log_callback(peer_log_fn f, void *user);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* PEER_H */
