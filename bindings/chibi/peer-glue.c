/* Hand-written C behind peer.stub: the direct (quick, non-blocking) calls, made on the
 * Scheme thread, and what they share with the blocking ones (peer-jobs.c).
 *
 * - Results are copied into fresh Scheme bytevectors and libpeer's buffers freed at once, so
 *   Scheme never holds memory that libpeer owns.
 * - Closing a handle clears the cpointer's free flag before peer_free, so the finalizer that
 *   define-c-struct installs and peer-close never both free it.
 */
#include <chibi/eval.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "peer-glue.h"

/* The last failure of a direct glue call made on the Scheme thread (making a peer,
 * normalizing): its status, and its reason when the glue itself refused (else NULL: the
 * reason is libpeer's, peer_last_error_reason). peer.scm reads both right after the call,
 * with green-thread switches off, so no other call can come between. */
static int glue_last_status;
static const char *glue_last_reason;

static void glue_fail(int status, const char *reason) {
  glue_last_status = status;
  glue_last_reason = reason;
}

int peer_glue_last_status(void) { return glue_last_status; }

const char *peer_glue_last_reason(void) {
  return glue_last_reason ? glue_last_reason : peer_last_error_reason();
}

/* Scheme has checked types and lengths; this copies a 32-byte input. */
int peer_glue_copy32(uint8_t dst[32], sexp bv) {
  if (!sexp_bytesp(bv) || sexp_bytes_length(bv) != 32) return 0;
  memcpy(dst, sexp_bytes_data(bv), 32);
  return 1;
}

sexp peer_glue_bytes(sexp ctx, const uint8_t *data, size_t len) {
  sexp res = sexp_make_bytes(ctx, sexp_make_fixnum(len), SEXP_VOID);
  if (!sexp_exceptionp(res) && len) memcpy(sexp_bytes_data(res), data, len);
  return res;
}

/* ---- Direct (non-blocking) calls, made on the Scheme thread ---- */

/* A copy of a Scheme string as a C string (malloc'd), or NULL with the failure recorded.
 * Chibi strings need not end in NUL; the caller has refused strings holding one. */
static char *c_string_copy(sexp s, const char *what) {
  size_t n;
  char *c;
  if (!sexp_stringp(s)) { glue_fail(PEER_ERR_INVALID, what); return NULL; }
  n = sexp_string_size(s);          /* bytes */
  if (!(c = malloc(n + 1))) { glue_fail(PEER_ERR_INTERNAL, "out of memory"); return NULL; }
  memcpy(c, sexp_string_data(s), n);
  c[n] = '\0';
  return c;
}

/* NULL (#f) on failure; then peer_glue_last_status() and peer_glue_last_reason() say why.
 * ip is a string, or #f for an external peer whose address libpeer derives from the uid. */
struct peer *peer_glue_new(sexp uid, sexp ip, int port, unsigned int replication,
                           int external) {
  struct peer *p = NULL;
  uint8_t u[32];
  char *host = NULL;
  if (!peer_glue_copy32(u, uid)) { glue_fail(PEER_ERR_INVALID, "invalid argument: uid"); return NULL; }
  if ((ip != SEXP_FALSE || !external) && !(host = c_string_copy(ip, "invalid argument: ip")))
    return NULL;
  glue_fail(external ? peer_new_external(u, host, (uint16_t)port, replication, &p)
                     : peer_new(u, host, (uint16_t)port, replication, &p), NULL);
  free(host);
  if (glue_last_status != PEER_OK) {
    /* a handle-less success is a bug */
    if (glue_last_status > 0) glue_fail(PEER_ERR_INTERNAL, "internal error: no handle");
    return NULL;
  }
  return p;
}

/* peer_new_with: peer_options_init, then the fields. uid and data_dir are #f for NULL (the
 * uid saved in data_dir or a fresh one; no data directory); address_limits is the C code
 * (0 default, 1 strict, 2 off). NULL (#f) on failure, as above. */
struct peer *peer_glue_new_with(sexp uid, const char *ip, int port, unsigned int replication,
                                sexp data_dir, unsigned int republish_s, unsigned int expire_s,
                                unsigned int address_limits) {
  struct peer *p = NULL;
  struct peer_options o;
  uint8_t u[32];
  char *dir = NULL;
  if (uid != SEXP_FALSE && !peer_glue_copy32(u, uid)) {
    glue_fail(PEER_ERR_INVALID, "invalid argument: uid");
    return NULL;
  }
  if (data_dir != SEXP_FALSE && !(dir = c_string_copy(data_dir, "invalid argument: data-dir")))
    return NULL;
  peer_options_init(&o);
  o.replication = replication;
  o.data_dir = dir;
  o.republish_s = republish_s;
  o.expire_s = expire_s;
  o.address_limits = address_limits;
  glue_fail(peer_new_with(uid != SEXP_FALSE ? u : NULL, ip, (uint16_t)port, &o, &p), NULL);
  free(dir);
  if (glue_last_status != PEER_OK) {
    if (glue_last_status > 0) glue_fail(PEER_ERR_INTERNAL, "internal error: no handle");
    return NULL;
  }
  return p;
}

/* Idempotent close of a peer cpointer. */
sexp peer_glue_close(sexp ctx, sexp self, sexp x) {
  struct peer *p;
  /* A define-c-struct object has its own type tag, not SEXP_CPOINTER, but a cpointer's
     layout; peer.scm passes only handles made by %peer-new. */
  if (!sexp_pointerp(x) || !sexp_cpointer_freep(x)) return SEXP_FALSE;
  p = (struct peer *)sexp_cpointer_value(x);
  sexp_cpointer_freep(x) = 0;
  sexp_cpointer_value(x) = NULL;
  peer_free(p);
  return SEXP_TRUE;
}

sexp peer_glue_uid(sexp ctx, sexp self, struct peer *p) {
  uint8_t u[32];
  if (peer_uid(p, u) != PEER_OK) return SEXP_FALSE;
  return peer_glue_bytes(ctx, u, 32);
}

sexp peer_glue_random_uid(sexp ctx, sexp self) {
  uint8_t u[32];
  peer_random_uid(u);
  return peer_glue_bytes(ctx, u, 32);
}

/* (secret . public) */
sexp peer_glue_keypair(sexp ctx, sexp self) {
  uint8_t s[32], pk[32];
  sexp_gc_var2(a, b);
  peer_keypair(s, pk);
  sexp_gc_preserve2(ctx, a, b);
  a = peer_glue_bytes(ctx, s, 32);
  if (!sexp_exceptionp(a)) {
    b = peer_glue_bytes(ctx, pk, 32);
    a = sexp_exceptionp(b) ? b : sexp_cons(ctx, a, b);
  }
  memset(s, 0, sizeof s);
  sexp_gc_release2(ctx);
  return a;
}

/* A string, or #f with peer_glue_last_status() set. */
sexp peer_glue_wire_normalize(sexp ctx, sexp self, sexp text) {
  uint8_t *out = NULL;
  size_t len = 0;
  sexp res;
  if (!sexp_bytesp(text)) {
    glue_fail(PEER_ERR_INVALID, "invalid argument: text");
    return SEXP_FALSE;
  }
  glue_fail(peer_wire_normalize((const uint8_t *)sexp_bytes_data(text),
                                sexp_bytes_length(text), &out, &len), NULL);
  if (glue_last_status != PEER_OK) return SEXP_FALSE;
  res = sexp_c_string(ctx, (const char *)out, len);
  peer_bytes_free(out, len + 1);
  return res;
}

/* (ip . port), or the (negative) status as a fixnum. */
sexp peer_glue_address(sexp ctx, sexp self, struct peer *p) {
  char ip[PEER_IP_BUF_LEN];
  uint16_t port = 0;
  int rc;
  sexp_gc_var1(s);
  memset(ip, 0, sizeof ip);
  rc = peer_address(p, ip, &port);
  if (rc != PEER_OK) return sexp_make_fixnum(rc > 0 ? PEER_ERR_INTERNAL : rc);
  ip[sizeof ip - 1] = '\0';
  sexp_gc_preserve1(ctx, s);
  s = sexp_c_string(ctx, ip, -1);
  if (!sexp_exceptionp(s)) s = sexp_cons(ctx, s, sexp_make_fixnum(port));
  sexp_gc_release1(ctx);
  return s;
}

/* The procedure a Chibi exception names (the one its printer shows as "ERROR in ..."), or
 * #f: Scheme has no accessor for it, and peer-error-who needs it. */
sexp peer_glue_exception_procedure(sexp ctx, sexp self, sexp x) {
  return sexp_exceptionp(x) ? sexp_exception_procedure(x) : SEXP_FALSE;
}

/* Every status number libpeer defines (peer_status_codes), as a list of fixnums; #f if they
 * cannot be read. peer.scm pairs each with its peer_status_symbol at load time. */
sexp peer_glue_status_codes(sexp ctx, sexp self) {
  size_t i, n = peer_status_count(), got = 0;
  int *codes = malloc((n ? n : 1) * sizeof *codes);
  sexp_gc_var1(res);
  if (!codes) return SEXP_FALSE;
  if (peer_status_codes(codes, n, &got) != PEER_OK || got > n) {
    free(codes);
    return SEXP_FALSE;
  }
  sexp_gc_preserve1(ctx, res);
  res = SEXP_NULL;
  for (i = got; i > 0 && !sexp_exceptionp(res); i--)
    res = sexp_cons(ctx, sexp_make_fixnum(codes[i - 1]), res);
  sexp_gc_release1(ctx);
  free(codes);
  return res;
}

/* peer_stats_list as an alist ((name . value) ...), in libpeer's order, each name a symbol
 * and each value an exact integer (a bignum past the fixnum range); #f with the failure
 * recorded. The count is asked first (cap 0); if the table grew before the second call, that
 * call reports more than the buffer held and is made once more with the larger count. */
sexp peer_glue_stats(sexp ctx, sexp self, struct peer *p) {
  struct peer_stat *buf = NULL;
  size_t n = 0, cap = 0, i;
  int rc, tries;
  sexp_gc_var3(res, name, value);
  rc = peer_stats_list(p, NULL, 0, &n);
  for (tries = 0; rc == PEER_OK && tries < 2; tries++) {
    free(buf);
    cap = n;
    if (!(buf = malloc((cap ? cap : 1) * sizeof *buf))) {
      glue_fail(PEER_ERR_INTERNAL, "out of memory");
      return SEXP_FALSE;
    }
    rc = peer_stats_list(p, buf, cap, &n);
    if (n <= cap) break;
  }
  if (rc != PEER_OK) {
    free(buf);
    glue_fail(rc > 0 ? PEER_ERR_INTERNAL : rc, rc > 0 ? "internal error: stats" : NULL);
    return SEXP_FALSE;
  }
  if (n > cap) n = cap;                 /* grew twice: what the buffer holds */
  sexp_gc_preserve3(ctx, res, name, value);
  res = SEXP_NULL;
  for (i = n; i > 0 && !sexp_exceptionp(res); i--) {
    name = sexp_intern(ctx, buf[i - 1].name, -1);
    value = sexp_make_unsigned_integer(ctx, buf[i - 1].value);
    if (sexp_exceptionp(name)) res = name;
    else if (sexp_exceptionp(value)) res = value;
    else {
      value = sexp_cons(ctx, name, value);
      res = sexp_exceptionp(value) ? value : sexp_cons(ctx, value, res);
    }
  }
  sexp_gc_release3(ctx);
  free(buf);
  return res;
}
