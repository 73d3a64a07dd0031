/* Shared by the C tests: a tiny check harness and a loopback network of peers.
 * Each test prints "N passed, M failed" as its last line and exits non-zero on failure. */
#ifndef PEER_TEST_HARNESS_H
#define PEER_TEST_HARNESS_H

#include "peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static inline void check_at(int ok, const char *file, int line, const char *what)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "FAIL %s:%d: %s [last error: %s]\n", file, line, what, peer_last_error());
}

/* CHECK(condition): counts one check. CHECK_RC(call, expected): also prints the status. */
#define CHECK(cond) check_at((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define CHECK_RC(call, expected)                                                            \
    do {                                                                                    \
        int rc_ = (call);                                                                   \
        if (rc_ != (expected))                                                              \
            fprintf(stderr, "  got %d (%s), expected %d (%s)\n", rc_, peer_strerror(rc_), \
                    (int)(expected), peer_strerror(expected));                              \
        check_at(rc_ == (expected), __FILE__, __LINE__, #call " == " #expected);            \
    } while (0)

static inline int finish(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout); /* LeakSanitizer exits before stdio would flush */
    return failed == 0 ? 0 : 1;
}

/* rand() in [0, n): test choices come from a fixed srand seed, uids from peer_random_uid. */
static inline int pick(int n) { return rand() % n; }

struct net {
    int n;
    struct peer *p[64];
    uint8_t uid[64][PEER_KEY_LEN];
    int live[64];
};

/* Start n peers on 127.0.0.1 (ephemeral ports) made with `opts` (NULL: peer_new with
 * replication 5), connect each to peer 0, bootstrap all.
 * Returns 0 when every step succeeded; failures are also counted as checks. */
static inline int net_start_with(struct net *net, int n, const struct peer_options *opts)
{
    int i, bad = 0;
    memset(net, 0, sizeof *net);
    net->n = n;
    for (i = 0; i < n; i++) {
        int rc;
        peer_random_uid(net->uid[i]);
        rc = opts ? peer_new_with(net->uid[i], "127.0.0.1", 0, opts, &net->p[i])
                  : peer_new(net->uid[i], "127.0.0.1", 0, 5, &net->p[i]);
        if (rc != PEER_OK) {
            fprintf(stderr, "peer_new %d: %s\n", i, peer_last_error());
            bad++;
            continue;
        }
        net->live[i] = 1;
    }
    CHECK(bad == 0);
    if (bad)
        return -1;
    for (i = 1; i < n; i++) {
        int rc = peer_connect(net->p[i], "127.0.0.1", peer_port(net->p[0]));
        if (rc != PEER_OK) {
            fprintf(stderr, "peer_connect %d: %d %s\n", i, rc, peer_last_error());
            bad++;
        }
    }
    CHECK(bad == 0);
    for (i = 0; i < n; i++) {
        int rc = peer_bootstrap(net->p[i]);
        if (rc != PEER_OK) {
            fprintf(stderr, "peer_bootstrap %d: %d %s\n", i, rc, peer_last_error());
            bad++;
        }
    }
    CHECK(bad == 0);
    return bad ? -1 : 0;
}

static inline int net_start(struct net *net, int n) { return net_start_with(net, n, NULL); }

/* A random live peer other than `not`. */
static inline int random_live(const struct net *net, int not)
{
    int tries;
    for (tries = 0; tries < 10000; tries++) {
        int i = pick(net->n);
        if (net->live[i] && i != not)
            return i;
    }
    return -1;
}

static inline void net_stop(struct net *net)
{
    int i;
    for (i = 0; i < net->n; i++) {
        if (net->live[i])
            peer_free(net->p[i]);
        net->live[i] = 0;
    }
}

#endif
