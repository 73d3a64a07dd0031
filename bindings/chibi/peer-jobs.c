/* Blocking calls of the Chibi library, run on pthreads (the C behind peer.stub's %job-*).
 *
 * Chibi's threads are green threads on one OS thread, so a blocking C call would freeze
 * every Scheme thread, the collector and, for a peer on the program's own transport, the
 * very pumping that lets the call finish. A "job" copies its inputs, runs the libpeer call
 * on a pool thread, reads peer_last_error_reason() on that pthread (the message is
 * thread-local), sets `done` and signals a condition variable. Scheme waits in short slices
 * (peer_glue_job_wait: at most a millisecond in C, woken at once when the call ends),
 * yielding to other green threads (the library thread among them) and pumping the
 * poll-mode peers between slices, then collects the result. A job is shared by the pthread
 * and the Scheme object (the finalizer of peer_job): a reference count frees it when both
 * are through, so a caller that gives up (an exception from the program's recv or send)
 * leaves nothing dangling and never blocks the collector. Results are copied into fresh
 * Scheme bytevectors and libpeer's buffers freed at once.
 *
 * Nothing here touches the Scheme heap outside the Scheme thread.
 */
#include <chibi/eval.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peer.h"
#include "peer-glue.h"

enum job_kind {
  JOB_CONNECT, JOB_BOOTSTRAP, JOB_SET, JOB_REF, JOB_BAG_PUBLISH, JOB_BAG, JOB_NS_SET, JOB_NS_REF,
  JOB_FORGET
};
enum bag_kind { BAG_POPULAR, BAG_RECENT, BAG_SAMPLE };

#define GLUE_ERR_LEN 1024

struct peer_job {
  atomic_int refs;               /* 2 while both the pthread and Scheme hold the job */
  atomic_int done;               /* set by the pthread after rc/err/outputs are written */
  pthread_mutex_t mu;            /* with `cond`: lets the Scheme thread sleep until done */
  pthread_cond_t cond;
  int kind, bag_kind, has_uid, has_sig;
  int spun;                      /* Scheme thread only: the first wait has spun */
  struct peer *p;
  char *ip;                      /* connect */
  uint16_t port;
  uint8_t uid[32], key[32], a[32], b[32], sig[64];
  uint8_t *in;                   /* set: a copy of the value */
  size_t in_len;
  uint8_t *out;                  /* ref: libpeer's buffer, freed with peer_bytes_free */
  size_t out_len;
  uint8_t out32[32], out64[64];
  uint8_t *vals;                 /* bag: cap * 32 bytes */
  size_t cap, n;
  int rc;
  char err[GLUE_ERR_LEN];
};

static void job_free(struct peer_job *j) {
  if (j->out) peer_bytes_free(j->out, j->out_len);
  free(j->in);
  free(j->vals);
  free(j->ip);
  pthread_cond_destroy(&j->cond);
  pthread_mutex_destroy(&j->mu);
  free(j);
}

/* Finalizer of the Scheme object, and the pthread's last act: whoever is last frees. */
void peer_glue_job_release(struct peer_job *j) {
  if (j && atomic_fetch_sub(&j->refs, 1) == 1) job_free(j);
}

static int run_bag(struct peer_job *j) {
  int (*plain)(struct peer *, const uint8_t *, uint8_t *, size_t, size_t *);
  int (*at)(struct peer *, const uint8_t *, const uint8_t *, uint8_t *, size_t, size_t *);
  switch (j->bag_kind) {
  case BAG_POPULAR: plain = peer_bag_popular; at = peer_bag_popular_at; break;
  case BAG_RECENT: plain = peer_bag_recent; at = peer_bag_recent_at; break;
  default: plain = peer_bag_sample; at = peer_bag_sample_at; break;
  }
  return j->has_uid ? at(j->p, j->uid, j->key, j->vals, j->cap, &j->n)
                    : plain(j->p, j->key, j->vals, j->cap, &j->n);
}

static int run_ns_ref(struct peer_job *j) {
  if (j->has_sig) {
    memcpy(j->out64, j->sig, 64);
    return j->has_uid
      ? peer_namespace_ref_at_pinned(j->p, j->uid, j->a, j->key, j->sig, j->out32)
      : peer_namespace_ref_pinned(j->p, j->a, j->key, j->sig, j->out32);
  }
  return j->has_uid
    ? peer_namespace_ref_at(j->p, j->uid, j->a, j->key, j->out32, j->out64)
    : peer_namespace_ref(j->p, j->a, j->key, j->out32, j->out64);
}

static void job_run(struct peer_job *j) {
  int rc;
  switch (j->kind) {
  case JOB_CONNECT: rc = peer_connect(j->p, j->ip, j->port); break;
  case JOB_BOOTSTRAP: rc = peer_bootstrap(j->p); break;
  case JOB_SET: rc = peer_set(j->p, j->in, j->in_len, j->out32); break;
  case JOB_REF: rc = peer_ref(j->p, j->key, &j->out, &j->out_len); break;
  case JOB_BAG_PUBLISH: rc = peer_bag_publish(j->p, j->key, j->a); break;
  case JOB_BAG: rc = run_bag(j); break;
  case JOB_NS_SET: rc = peer_namespace_set(j->p, j->a, j->b, j->key, j->uid, j->out64); break;
  case JOB_NS_REF: rc = run_ns_ref(j); break;
  case JOB_FORGET: rc = peer_forget(j->p, j->key); break;
  default: rc = PEER_ERR_INTERNAL; break;
  }
  if (rc != PEER_OK && rc != PEER_NOT_FOUND) {
    /* The message is thread-local: this is the only thread that can read it. */
    const char *msg = peer_last_error_reason();
    strncpy(j->err, msg ? msg : "", GLUE_ERR_LEN - 1);
  }
  j->rc = rc;
  pthread_mutex_lock(&j->mu);
  atomic_store(&j->done, 1);
  pthread_cond_broadcast(&j->cond);
  pthread_mutex_unlock(&j->mu);
  peer_glue_job_release(j);
}

/* ---- The worker pool ----
 * Handing a call to a waiting thread costs a fraction of creating one. A worker is made
 * whenever a call would otherwise wait for one (up to POOL_MAX; past that, calls queue), so
 * calls of several green threads run side by side, and an idle worker exits after
 * POOL_IDLE_SECONDS, so an idle program keeps no threads. */
#define POOL_MAX 64
#define POOL_IDLE_SECONDS 10

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static struct job_node { struct peer_job *job; struct job_node *next; } *pool_head, *pool_tail;
static int pool_threads, pool_idle, pool_queued;

static void *worker_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&pool_mu);
  for (;;) {
    struct job_node *n;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += POOL_IDLE_SECONDS;
    while (!pool_head) {
      int rc;
      pool_idle++;
      rc = pthread_cond_timedwait(&pool_cond, &pool_mu, &deadline);
      pool_idle--;
      if (rc != 0 && !pool_head) {
        pool_threads--;
        pthread_mutex_unlock(&pool_mu);
        return NULL;
      }
    }
    n = pool_head;
    pool_queued--;
    pool_head = n->next;
    if (!pool_head) pool_tail = NULL;
    pthread_mutex_unlock(&pool_mu);
    job_run(n->job);
    free(n);
    pthread_mutex_lock(&pool_mu);
  }
}

static struct peer_job *job_new(struct peer *p, int kind) {
  pthread_condattr_t attr;
  struct peer_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  if (pthread_condattr_init(&attr) != 0) { free(j); return NULL; }
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (pthread_cond_init(&j->cond, &attr) != 0) {
    pthread_condattr_destroy(&attr);
    free(j);
    return NULL;
  }
  pthread_condattr_destroy(&attr);
  pthread_mutex_init(&j->mu, NULL);
  atomic_init(&j->refs, 2);
  atomic_init(&j->done, 0);
  j->p = p;
  j->kind = kind;
  return j;
}

/* NULL (#f in Scheme) when no thread could be started; the job is then already freed. */
static struct peer_job *job_start(struct peer_job *j) {
  struct job_node *n;
  if (!j) return NULL;
  if (!(n = malloc(sizeof *n))) { job_free(j); return NULL; }
  n->job = j;
  n->next = NULL;
  pthread_mutex_lock(&pool_mu);
  if (pool_queued >= pool_idle && pool_threads < POOL_MAX) {
    pthread_t t;
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      ok = pthread_create(&t, &attr, worker_main, NULL) == 0;
      pthread_attr_destroy(&attr);
    }
    if (ok) {
      pool_threads++;
    } else if (pool_threads == 0) {  /* nobody would ever run it */
      pthread_mutex_unlock(&pool_mu);
      free(n);
      job_free(j);
      return NULL;
    }
  }
  if (pool_tail) pool_tail->next = n; else pool_head = n;
  pool_tail = n;
  pool_queued++;
  pthread_cond_signal(&pool_cond);
  pthread_mutex_unlock(&pool_mu);
  return j;
}

struct peer_job *peer_glue_job_connect(struct peer *p, const char *ip, int port) {
  struct peer_job *j = job_new(p, JOB_CONNECT);
  if (!j) return NULL;
  if (!(j->ip = strdup(ip))) { job_free(j); return NULL; }
  j->port = (uint16_t)port;
  return job_start(j);
}

struct peer_job *peer_glue_job_bootstrap(struct peer *p) {
  return job_start(job_new(p, JOB_BOOTSTRAP));
}

struct peer_job *peer_glue_job_set(struct peer *p, sexp value) {
  struct peer_job *j;
  size_t len;
  if (!sexp_bytesp(value)) return NULL;
  if (!(j = job_new(p, JOB_SET))) return NULL;
  len = sexp_bytes_length(value);
  if (!(j->in = malloc(len ? len : 1))) { job_free(j); return NULL; }
  memcpy(j->in, sexp_bytes_data(value), len);
  j->in_len = len;
  return job_start(j);
}

struct peer_job *peer_glue_job_ref(struct peer *p, sexp key) {
  struct peer_job *j = job_new(p, JOB_REF);
  if (!j) return NULL;
  if (!peer_glue_copy32(j->key, key)) { job_free(j); return NULL; }
  return job_start(j);
}

struct peer_job *peer_glue_job_bag_publish(struct peer *p, sexp key, sexp value) {
  struct peer_job *j = job_new(p, JOB_BAG_PUBLISH);
  if (!j) return NULL;
  if (!peer_glue_copy32(j->key, key) || !peer_glue_copy32(j->a, value)) { job_free(j); return NULL; }
  return job_start(j);
}

/* uid is #f for the plain variant. */
struct peer_job *peer_glue_job_bag(struct peer *p, int kind, sexp uid, sexp key, size_t cap) {
  struct peer_job *j = job_new(p, JOB_BAG);
  if (!j) return NULL;
  j->bag_kind = kind;
  j->has_uid = uid != SEXP_FALSE;
  if ((j->has_uid && !peer_glue_copy32(j->uid, uid)) || !peer_glue_copy32(j->key, key)
      || !(j->vals = calloc(cap ? cap : 1, 32))) {
    job_free(j);
    return NULL;
  }
  j->cap = cap;
  return job_start(j);
}

struct peer_job *peer_glue_job_ns_set(struct peer *p, sexp secret, sexp pub, sexp key,
                                      sexp value) {
  struct peer_job *j = job_new(p, JOB_NS_SET);
  if (!j) return NULL;
  /* a = secret, b = public key, uid = value (reusing the 32-byte slots) */
  if (!peer_glue_copy32(j->a, secret) || !peer_glue_copy32(j->b, pub) || !peer_glue_copy32(j->key, key)
      || !peer_glue_copy32(j->uid, value)) {
    job_free(j);
    return NULL;
  }
  return job_start(j);
}

/* uid and sig are #f when not given. */
struct peer_job *peer_glue_job_ns_ref(struct peer *p, sexp uid, sexp pub, sexp key, sexp sig) {
  struct peer_job *j = job_new(p, JOB_NS_REF);
  if (!j) return NULL;
  j->has_uid = uid != SEXP_FALSE;
  j->has_sig = sig != SEXP_FALSE;
  if ((j->has_uid && !peer_glue_copy32(j->uid, uid)) || !peer_glue_copy32(j->a, pub) || !peer_glue_copy32(j->key, key)
      || (j->has_sig && !(sexp_bytesp(sig) && sexp_bytes_length(sig) == 64))) {
    job_free(j);
    return NULL;
  }
  if (j->has_sig) memcpy(j->sig, sexp_bytes_data(sig), 64);
  return job_start(j);
}

struct peer_job *peer_glue_job_forget(struct peer *p, sexp key) {
  struct peer_job *j = job_new(p, JOB_FORGET);
  if (!j) return NULL;
  if (!peer_glue_copy32(j->key, key)) { job_free(j); return NULL; }
  return job_start(j);
}

int peer_glue_job_done(struct peer_job *j) { return atomic_load(&j->done); }

/* Sleeps until the job is done or `usec` (at most 1 ms) has passed; returns done. Bounded so
 * that other green threads and the pumping of external peers wait at most that long. */
int peer_glue_job_wait(struct peer_job *j, int usec) {
  struct timespec deadline;
  int spin;
  if (atomic_load(&j->done) || usec <= 0) return atomic_load(&j->done);
  /* A quick call often ends within microseconds: on the first wait, look a few times
     before sleeping, since waking from a condition variable costs more than that. */
  if (!j->spun) {
    j->spun = 1;
    for (spin = 0; spin < 256; spin++) {
      if (atomic_load(&j->done)) return 1;
      sched_yield();
    }
  }
  if (usec > 1000) usec = 1000;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_nsec += (long)usec * 1000;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&j->mu);
  while (!atomic_load(&j->done))
    if (pthread_cond_timedwait(&j->cond, &j->mu, &deadline) != 0) break;
  pthread_mutex_unlock(&j->mu);
  return atomic_load(&j->done);
}

/* Only meaningful once done. */
int peer_glue_job_status(struct peer_job *j) {
  return atomic_load(&j->done) ? j->rc : PEER_ERR_INTERNAL;
}

const char *peer_glue_job_error(struct peer_job *j) {
  return atomic_load(&j->done) ? j->err : "";
}

/* The job's result as a Scheme object: a bytevector, a vector of bytevectors, #f for "not
 * found", or #t for calls that return nothing. libpeer's buffer is freed here. */
sexp peer_glue_job_result(sexp ctx, sexp self, struct peer_job *j) {
  sexp_gc_var2(res, bv);
  size_t i;
  if (!atomic_load(&j->done) || j->rc < 0) return SEXP_FALSE;
  switch (j->kind) {
  case JOB_SET: return peer_glue_bytes(ctx, j->out32, 32);
  case JOB_NS_SET: return peer_glue_bytes(ctx, j->out64, 64);
  case JOB_REF:
    if (j->rc != PEER_OK) return SEXP_FALSE;
    res = peer_glue_bytes(ctx, j->out, j->out_len);
    if (j->out) peer_bytes_free(j->out, j->out_len);
    j->out = NULL;
    return res;
  case JOB_NS_REF:
    return j->rc == PEER_OK ? peer_glue_bytes(ctx, j->out32, 32) : SEXP_FALSE;
  case JOB_BAG:
    if (j->n > j->cap) j->n = j->cap;  /* never trust a count past the buffer */
    sexp_gc_preserve2(ctx, res, bv);
    res = sexp_make_vector(ctx, sexp_make_fixnum(j->n), SEXP_FALSE);
    for (i = 0; i < j->n && !sexp_exceptionp(res); i++) {
      bv = peer_glue_bytes(ctx, j->vals + 32 * i, 32);
      if (sexp_exceptionp(bv)) res = bv;
      else sexp_vector_set(res, sexp_make_fixnum(i), bv);
    }
    sexp_gc_release2(ctx);
    return res;
  default:
    return SEXP_TRUE;
  }
}
