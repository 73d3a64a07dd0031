// The one table of libpeer's status codes. Everything else derives from these rows:
// - src/status/mod.rs `include!`s it to make the Rust `Status` enum, the PEER_* constants,
//   the names `peer_strerror` returns and the symbols `peer_status_symbol` returns (and so
//   `Error::code`, `Error`'s messages and the Scheme libraries' code <-> symbol tables);
// - build.rs `include!`s it to write the PEER_* macros of include/peer.h.
// Each includer defines its own `status_table!` macro, so this file is data only.
//
// A row: the header's doc comment, then `Variant = number, C macro, "symbol", "name";`.
// Rules: a number is never reused or renumbered, and a symbol or C macro never renamed;
// a new status takes the next free number (the next error is -13) and goes at the end.
// 0 is success, 1 "not found" (not an error), negatives are errors.
status_table! {
    /// Status: success.
    Ok = 0, PEER_OK, "ok", "ok";
    /// Status: the key, record or value was not found (not an error).
    NotFound = 1, PEER_NOT_FOUND, "not-found", "not found";
    /// Status: a required pointer argument was NULL.
    Null = -1, PEER_ERR_NULL, "null", "null pointer argument";
    /// Status: an invalid argument (replication outside 5..20, unparsable IP address, ...).
    Invalid = -2, PEER_ERR_INVALID, "invalid", "invalid argument";
    /// Status: a value longer than PEER_MAX_VALUE_SIZE.
    TooLarge = -3, PEER_ERR_TOO_LARGE, "too-large", "value too large";
    /// Status: the peer handle is freed, unknown, or its peer has stopped.
    Closed = -4, PEER_ERR_CLOSED, "closed", "peer is closed";
    /// Status: the operating system refused something (bind, socket, thread).
    Os = -5, PEER_ERR_OS, "os", "operating system error";
    /// Status: no peer could be reached (connect failed, `_at` uid not found, empty table).
    Unreachable = -6, PEER_ERR_UNREACHABLE, "unreachable", "no peer could be reached";
    /// Status: no peer accepted the store.
    NotStored = -7, PEER_ERR_NOT_STORED, "not-stored", "no peer accepted the store";
    /// Status: the namespace secret key does not belong to the given public key.
    KeyMismatch = -8, PEER_ERR_KEY_MISMATCH, "key-mismatch", "secret key does not match public key";
    /// Status: an internal error (a bug in libpeer; the call had no effect on the caller's memory).
    Internal = -9, PEER_ERR_INTERNAL, "internal", "internal error";
    /// Status: a message handed in (peer_ext_push, peer_wire_normalize) is malformed.
    Malformed = -10, PEER_ERR_MALFORMED, "malformed", "malformed message";
    /// Status: the data directory is held by another live peer (in this or another process).
    Busy = -11, PEER_ERR_BUSY, "busy", "data directory in use";
    /// Status: the data directory could not be read or written (a damaged or foreign store).
    Storage = -12, PEER_ERR_STORAGE, "storage", "data directory error";
}
