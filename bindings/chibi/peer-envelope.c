/* Envelopes of the program's transport as Scheme data, both ways, in C.
 *
 * Why C: Chibi's `read` takes time quadratic in a bytevector's length (a 32,000-byte literal
 * takes over a second; a largest value, 262,112 bytes, minutes), and its `write` prints bytes
 * in hex ("#xFF ", five bytes a byte), which would push a largest value's envelope past the
 * 1 MiB libpeer's reader accepts. Here both directions cost one pass.
 *
 * Out (peer_glue_ext_pop): libpeer's canonical envelope text (vectors, symbols, unsigned
 * integers, address strings, `#u8(`, `#t`/`#f`), parsed into the datum for `send`. The text
 * is libpeer's own, nothing from the network.
 * In (peer_glue_ext_push_datum): what the program's `recv` returned is untrusted. It is
 * walked, bounded (see the limits below), and written as text for peer_ext_push, whose safe
 * reader decides. Anything outside the envelope's types or limits is refused without
 * reaching libpeer. Nothing is ever evaluated.
 */
#include <chibi/eval.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

/* ---- Out: libpeer's canonical text -> a datum ---- */

#define READ_MAX_DEPTH 16         /* libpeer nests at most 8 deep, plus the envelope */

struct text { const uint8_t *p, *end; };

static int delimiter(uint8_t c) { return c == ' ' || c == '(' || c == ')' || c == '"'; }

static void skip_spaces(struct text *t) { while (t->p < t->end && *t->p == ' ') t->p++; }

/* One datum, or SEXP_VOID when the text is not as libpeer writes it (a bug: then the
 * envelope is dropped) or an exception object when allocation failed. */
static sexp read_datum(sexp ctx, struct text *t, int depth) {
  const uint8_t *start;
  skip_spaces(t);
  if (t->p >= t->end || depth > READ_MAX_DEPTH) return SEXP_VOID;
  start = t->p;
  if (*t->p == '#') {
    if (t->end - t->p >= 2 && t->p[1] == '(') {            /* #( ... ) */
      sexp res;
      sexp_gc_var2(ls, x);
      sexp_gc_preserve2(ctx, ls, x);
      t->p += 2;
      ls = SEXP_NULL;
      res = SEXP_VOID;
      for (;;) {
        skip_spaces(t);
        if (t->p >= t->end) break;
        if (*t->p == ')') {
          t->p++;
          ls = sexp_nreverse(ctx, ls);
          res = sexp_list_to_vector(ctx, ls);
          break;
        }
        x = read_datum(ctx, t, depth + 1);
        if (x == SEXP_VOID || sexp_exceptionp(x)) { res = x; break; }
        ls = sexp_cons(ctx, x, ls);
        if (sexp_exceptionp(ls)) { res = ls; break; }
      }
      sexp_gc_release2(ctx);
      return res;
    }
    if (t->end - t->p >= 4 && memcmp(t->p, "#u8(", 4) == 0) { /* #u8( ... ) */
      const uint8_t *q;
      size_t n = 0, i = 0;
      sexp bv;
      t->p += 4;
      for (q = t->p; q < t->end && *q != ')'; q++)            /* count the numbers */
        if (*q != ' ' && (q == t->p || q[-1] == ' ')) n++;
      if (q >= t->end) return SEXP_VOID;
      bv = sexp_make_bytes(ctx, sexp_make_fixnum(n), SEXP_ZERO);
      if (sexp_exceptionp(bv)) return bv;
      while (i < n) {
        unsigned v = 0;
        skip_spaces(t);
        if (t->p >= q || *t->p < '0' || *t->p > '9') return SEXP_VOID;
        while (t->p < q && *t->p >= '0' && *t->p <= '9') v = v * 10 + (*t->p++ - '0');
        if (v > 255) return SEXP_VOID;
        sexp_bytes_data(bv)[i++] = (unsigned char)v;
      }
      skip_spaces(t);
      if (t->p != q) return SEXP_VOID;
      t->p = q + 1;
      return bv;
    }
    if (t->end - t->p >= 2 && (t->p[1] == 't' || t->p[1] == 'f')
        && (t->end - t->p == 2 || delimiter(t->p[2]))) {
      t->p += 2;
      return start[1] == 't' ? SEXP_TRUE : SEXP_FALSE;
    }
    return SEXP_VOID;
  }
  if (*t->p == '"') {                                      /* an address: no escapes */
    const uint8_t *q = ++t->p;
    while (q < t->end && *q != '"' && *q != '\\') q++;
    if (q >= t->end || *q != '"') return SEXP_VOID;
    t->p = q + 1;
    return sexp_c_string(ctx, (const char *)start + 1, q - start - 1);
  }
  while (t->p < t->end && !delimiter(*t->p)) t->p++;
  if (t->p == start || *start == ')') return SEXP_VOID;
  if (*start >= '0' && *start <= '9') {                    /* an unsigned integer */
    const uint8_t *q;
    for (q = start; q < t->p; q++) if (*q < '0' || *q > '9') return SEXP_VOID;
    if (t->p - start <= 18) {
      sexp_sint_t v = 0;
      for (q = start; q < t->p; q++) v = v * 10 + (*q - '0');
      return sexp_make_integer(ctx, v);
    } else {                                               /* a uid, a key: a bignum */
      sexp res;
      sexp_gc_var1(s);
      sexp_gc_preserve1(ctx, s);
      s = sexp_c_string(ctx, (const char *)start, t->p - start);
      res = sexp_exceptionp(s) ? s : sexp_string_to_number(ctx, s, SEXP_TEN);
      sexp_gc_release1(ctx);
      return res;
    }
  }
  return sexp_intern(ctx, (const char *)start, t->p - start);  /* a symbol */
}

/* Never blocks: #f when nothing is waiting, (ip port envelope-datum) for a message, the
 * symbol `malformed` for a text this reader cannot follow (dropped by peer.scm), or the
 * (negative) status as a fixnum. */
sexp peer_glue_ext_pop(sexp ctx, sexp self, struct peer *p) {
  char ip[PEER_IP_BUF_LEN];
  uint16_t port = 0;
  uint8_t *env = NULL;
  size_t len = 0;
  int rc;
  struct text t;
  sexp_gc_var3(res, s, d);
  memset(ip, 0, sizeof ip);
  rc = peer_ext_pop(p, 0, ip, &port, &env, &len);
  if (rc == PEER_NOT_FOUND) return SEXP_FALSE;
  if (rc != PEER_OK) return sexp_make_fixnum(rc);
  ip[sizeof ip - 1] = '\0';
  sexp_gc_preserve3(ctx, res, s, d);
  t.p = env;
  t.end = env + len;
  d = read_datum(ctx, &t, 0);
  skip_spaces(&t);
  if (d != SEXP_VOID && !sexp_exceptionp(d) && t.p != t.end) d = SEXP_VOID;
  peer_bytes_free(env, len);
  if (d == SEXP_VOID) {
    res = sexp_intern(ctx, "malformed", 9);
  } else if (sexp_exceptionp(d)) {
    res = d;
  } else {
    s = sexp_c_string(ctx, ip, -1);
    res = sexp_cons(ctx, d, SEXP_NULL);
    res = sexp_cons(ctx, sexp_make_fixnum(port), res);
    res = sexp_cons(ctx, s, res);
  }
  sexp_gc_release3(ctx);
  return res;
}

/* ---- In: the program's datum -> text for libpeer's reader ---- */

#define WALK_MAX_DEPTH 10           /* vectors nested at most this deep */
#define WALK_MAX_ELEMENTS 1048576   /* vector elements in all */
#define WALK_MAX_BYTES 1048576      /* bytevector, string and symbol lengths in all */
/* libpeer reads integers of at most 80 digits: a bignum of more 64-bit words is refused
 * before it is printed (10^80 < 2^266). */
#define WALK_MAX_BIGNUM_WORDS 5

struct out {
  char *buf;
  size_t len, cap;
  size_t elements, bytes;
};

static int put(struct out *o, const char *s, size_t n) {
  if (n == 0) return 1;
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    char *b;
    while (cap < o->len + n) cap *= 2;
    if (!(b = realloc(o->buf, cap))) return 0;
    o->buf = b;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  return 1;
}

static int count_bytes(struct out *o, size_t n) {
  o->bytes += n;
  return o->bytes <= WALK_MAX_BYTES;
}

/* A symbol as it may appear in a message: plain identifier characters only, so the text
 * cannot say anything the datum did not (a symbol `a)b` written raw would). */
static int plain_symbol(const char *s, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || strchr("-!$%&*/:<=>?^_~+.@", c)))
      return 0;
  }
  /* never a number's start (`+5`, `.5`, `1a`) nor `@`: a letter or one of these */
  return (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')
    || strchr("!$%&*/:<=>?^_~", s[0]);
}

/* 1 when x was written, 0 when it is refused (or memory ran out). */
static int write_datum(sexp ctx, sexp x, int depth, struct out *o) {
  char num[32];
  if (sexp_vectorp(x)) {
    sexp_uint_t i, n = sexp_vector_length(x);
    o->elements += n;
    if (depth >= WALK_MAX_DEPTH || o->elements > WALK_MAX_ELEMENTS || !put(o, "#(", 2)) return 0;
    for (i = 0; i < n; i++)
      if ((i > 0 && !put(o, " ", 1)) || !write_datum(ctx, sexp_vector_data(x)[i], depth + 1, o))
        return 0;
    return put(o, ")", 1);
  }
  if (sexp_bytesp(x)) {
    sexp_uint_t i, n = sexp_bytes_length(x);
    const unsigned char *b = (const unsigned char *)sexp_bytes_data(x);
    if (!count_bytes(o, n) || !put(o, "#u8(", 4)) return 0;
    for (i = 0; i < n; i++) {
      int k = snprintf(num, sizeof num, i > 0 ? " %u" : "%u", b[i]);
      if (!put(o, num, (size_t)k)) return 0;
    }
    return put(o, ")", 1);
  }
  if (sexp_fixnump(x)) {
    int k = snprintf(num, sizeof num, "%ld", (long)sexp_unbox_fixnum(x));
    return put(o, num, (size_t)k);
  }
  if (sexp_bignump(x)) {
    int ok;
    sexp_gc_var1(s);
    if (sexp_bignum_length(x) > WALK_MAX_BIGNUM_WORDS) return 0;
    sexp_gc_preserve1(ctx, s);
    s = sexp_write_to_string(ctx, x);
    ok = sexp_stringp(s) && put(o, sexp_string_data(s), sexp_string_size(s));
    sexp_gc_release1(ctx);
    return ok;
  }
  if (sexp_stringp(x)) {                                   /* an address: no escapes */
    sexp_uint_t i, n = sexp_string_size(x);
    const char *s = sexp_string_data(x);
    if (!count_bytes(o, n)) return 0;
    for (i = 0; i < n; i++)
      if (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20) return 0;
    return put(o, "\"", 1) && put(o, s, n) && put(o, "\"", 1);
  }
  if (sexp_symbolp(x)) {
    int ok;
    sexp_gc_var1(s);
    sexp_gc_preserve1(ctx, s);
    s = sexp_symbol_to_string(ctx, x);
    ok = sexp_stringp(s) && count_bytes(o, sexp_string_size(s))
      && plain_symbol(sexp_string_data(s), sexp_string_size(s))
      && put(o, sexp_string_data(s), sexp_string_size(s));
    sexp_gc_release1(ctx);
    return ok;
  }
  if (x == SEXP_TRUE) return put(o, "#t", 2);
  if (x == SEXP_FALSE) return put(o, "#f", 2);
  return 0;                                                /* pairs, chars, reals, ... */
}

/* Hands what `recv` returned to p: peer_ext_push's status, or PEER_ERR_MALFORMED when the
 * datum was refused before libpeer (peer.scm drops it either way). */
int peer_glue_ext_push_datum(sexp ctx, sexp self, struct peer *p, sexp datum) {
  struct out o = {NULL, 0, 0, 0, 0};
  int rc = write_datum(ctx, datum, 0, &o)
    ? peer_ext_push(p, (const uint8_t *)o.buf, o.len)
    : PEER_ERR_MALFORMED;
  free(o.buf);
  return rc;
}
