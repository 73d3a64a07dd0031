/* Bags and namespaces through the C ABI on a 50-peer loopback network: publish from several
 * peers, popular/recent/sample and their _at forms, namespace set/ref/ref_at, pinned reads,
 * overwrite by a later set, wrong secret, not found. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <time.h>

#define NPEERS 50
#define CAP 20

static int has(const uint8_t *vals, size_t n, const uint8_t *v)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (memcmp(vals + i * PEER_KEY_LEN, v, PEER_KEY_LEN) == 0)
            return 1;
    return 0;
}

/* Exactly the three values a, b, c, each once. */
static int exactly3(const uint8_t *vals, size_t n, const uint8_t *a, const uint8_t *b, const uint8_t *c)
{
    return n == 3 && has(vals, n, a) && has(vals, n, b) && has(vals, n, c) &&
           memcmp(vals, vals + 32, 32) != 0 && memcmp(vals, vals + 64, 32) != 0 &&
           memcmp(vals + 32, vals + 64, 32) != 0;
}

typedef int (*bag_fn)(struct peer *, const uint8_t *, uint8_t *, size_t, size_t *);
typedef int (*bag_at_fn)(struct peer *, const uint8_t *, const uint8_t *, uint8_t *, size_t, size_t *);

static void check_bags(struct net *net)
{
    static const bag_fn fns[3] = {peer_bag_popular, peer_bag_recent, peer_bag_sample};
    static const bag_at_fn at_fns[3] = {peer_bag_popular_at, peer_bag_recent_at, peer_bag_sample_at};
    uint8_t key[PEER_KEY_LEN], empty_key[PEER_KEY_LEN], unknown[PEER_KEY_LEN];
    uint8_t a[PEER_KEY_LEN], b[PEER_KEY_LEN], c[PEER_KEY_LEN];
    uint8_t vals[CAP * PEER_KEY_LEN];
    size_t n;
    int i, k, rc, holder = -1, holders = 0, reader;

    peer_random_uid(key);
    peer_random_uid(empty_key);
    peer_random_uid(unknown);
    memset(a, 'a', 32);
    memset(b, 'b', 32);
    memset(c, 'c', 32);

    /* a from 5 peers, b from 3, c from 1 and last: popular a,b,c; most recent c. */
    for (i = 0; i < 5; i++)
        CHECK_RC(peer_bag_publish(net->p[10 + i], key, a), PEER_OK);
    CHECK_RC(peer_bag_publish(net->p[10], key, a), PEER_OK); /* same publisher again */
    for (i = 0; i < 3; i++)
        CHECK_RC(peer_bag_publish(net->p[20 + i], key, b), PEER_OK);
    /* Bag replies give ages in whole seconds, so merged "recent" order is only defined
     * between publishes a second or more apart. */
    {
        struct timespec ts = {1, 500000000};
        nanosleep(&ts, NULL);
    }
    CHECK_RC(peer_bag_publish(net->p[30], key, c), PEER_OK);

    reader = 40;
    n = 999;
    CHECK_RC(peer_bag_popular(net->p[reader], key, vals, CAP, &n), PEER_OK);
    CHECK(exactly3(vals, n, a, b, c));
    CHECK(n >= 3 && memcmp(vals, a, 32) == 0 && memcmp(vals + 32, b, 32) == 0);
    n = 999;
    CHECK_RC(peer_bag_recent(net->p[reader + 1], key, vals, CAP, &n), PEER_OK);
    CHECK(exactly3(vals, n, a, b, c));
    CHECK(n >= 1 && memcmp(vals, c, 32) == 0);
    n = 999;
    CHECK_RC(peer_bag_sample(net->p[reader + 2], key, vals, CAP, &n), PEER_OK);
    CHECK(exactly3(vals, n, a, b, c));
    /* cap bounds what is written */
    n = 999;
    memset(vals, 0xEE, sizeof vals);
    CHECK_RC(peer_bag_popular(net->p[reader], key, vals, 1, &n), PEER_OK);
    CHECK(n == 1 && memcmp(vals, a, 32) == 0 && vals[32] == 0xEE);
    n = 999;
    CHECK_RC(peer_bag_popular(net->p[reader], key, NULL, 0, &n), PEER_OK);
    CHECK(n == 0);
    /* an empty bag */
    for (k = 0; k < 3; k++) {
        n = 999;
        CHECK_RC(fns[k](net->p[reader], empty_key, vals, CAP, &n), PEER_OK);
        CHECK(n == 0);
    }

    /* _at: ask every peer for its local answer; the bag's holders answer all three. */
    for (i = 0; i < net->n; i++) {
        n = 0;
        rc = peer_bag_popular_at(net->p[reader], net->uid[i], key, vals, CAP, &n);
        if (rc != PEER_OK)
            fprintf(stderr, "  popular_at peer %d: %d (%s) %s\n", i, rc, peer_strerror(rc), peer_last_error());
        CHECK(rc == PEER_OK);
        if (rc == PEER_OK && exactly3(vals, n, a, b, c)) {
            holders++;
            if (holder < 0)
                holder = i;
        }
    }
    CHECK(holders >= 1 && holders <= 20);
    fprintf(stderr, "  bag held by %d peers\n", holders);
    if (holder >= 0) {
        n = 0;
        CHECK_RC(peer_bag_popular_at(net->p[reader], net->uid[holder], key, vals, CAP, &n), PEER_OK);
        CHECK(n == 3 && memcmp(vals, a, 32) == 0);
        n = 0;
        CHECK_RC(peer_bag_recent_at(net->p[reader], net->uid[holder], key, vals, CAP, &n), PEER_OK);
        CHECK(exactly3(vals, n, a, b, c) && memcmp(vals, c, 32) == 0);
        n = 0;
        CHECK_RC(peer_bag_sample_at(net->p[reader], net->uid[holder], key, vals, CAP, &n), PEER_OK);
        CHECK(exactly3(vals, n, a, b, c));
        n = 999;
        CHECK_RC(peer_bag_popular_at(net->p[reader], net->uid[holder], empty_key, vals, CAP, &n), PEER_OK);
        CHECK(n == 0);
    }
    /* an unknown uid is an error, for each kind */
    for (k = 0; k < 3; k++) {
        n = 999;
        CHECK_RC(at_fns[k](net->p[reader], unknown, key, vals, CAP, &n), PEER_ERR_UNREACHABLE);
        CHECK(n == 999);
        CHECK(peer_last_error()[0] != '\0');
    }

    /* bad input */
    CHECK_RC(peer_bag_publish(net->p[0], NULL, a), PEER_ERR_NULL);
    CHECK_RC(peer_bag_publish(net->p[0], key, NULL), PEER_ERR_NULL);
    CHECK_RC(peer_bag_publish(NULL, key, a), PEER_ERR_NULL);
    CHECK_RC(peer_bag_popular(net->p[0], key, NULL, 5, &n), PEER_ERR_NULL);
    CHECK_RC(peer_bag_recent(net->p[0], key, vals, CAP, NULL), PEER_ERR_NULL);
    CHECK_RC(peer_bag_sample(net->p[0], NULL, vals, CAP, &n), PEER_ERR_NULL);
    CHECK_RC(peer_bag_sample_at(net->p[0], NULL, key, vals, CAP, &n), PEER_ERR_NULL);
}

static void check_namespaces(struct net *net)
{
    uint8_t sk[32], pk[32], sk2[32], pk2[32], key[32], other_key[32], unknown[32];
    uint8_t v1[32], v2[32], got[32], sig1[64], sig2[64], sig[64];
    int i, rc, holders = 0, holder = -1, a = pick(NPEERS), b = random_live(net, a);

    peer_keypair(sk, pk);
    peer_keypair(sk2, pk2);
    CHECK(memcmp(pk, pk2, 32) != 0);
    peer_random_uid(key);
    peer_random_uid(other_key);
    peer_random_uid(unknown);
    memset(v1, 1, 32);
    memset(v2, 2, 32);

    /* not found before any set */
    memset(got, 0xEE, 32);
    CHECK_RC(peer_namespace_ref(net->p[b], pk, key, got, sig), PEER_NOT_FOUND);
    CHECK(got[0] == 0xEE);

    CHECK_RC(peer_namespace_set(net->p[a], sk, pk, key, v1, sig1), PEER_OK);
    CHECK_RC(peer_namespace_ref(net->p[b], pk, key, got, sig), PEER_OK);
    CHECK(memcmp(got, v1, 32) == 0 && memcmp(sig, sig1, 64) == 0);
    CHECK_RC(peer_namespace_ref(net->p[b], pk, key, got, NULL), PEER_OK);
    CHECK_RC(peer_namespace_ref_pinned(net->p[b], pk, key, sig1, got), PEER_OK);
    CHECK(memcmp(got, v1, 32) == 0);

    /* ref_at: every peer's local answer; the holders have v1 */
    for (i = 0; i < net->n; i++) {
        memset(got, 0, 32);
        rc = peer_namespace_ref_at(net->p[b], net->uid[i], pk, key, got, sig);
        CHECK(rc == PEER_OK || rc == PEER_NOT_FOUND);
        if (rc == PEER_OK) {
            CHECK(memcmp(got, v1, 32) == 0 && memcmp(sig, sig1, 64) == 0);
            holders++;
            if (holder < 0)
                holder = i;
        }
    }
    CHECK(holders >= 1 && holders <= 20);
    fprintf(stderr, "  namespace record held by %d peers\n", holders);
    if (holder >= 0) {
        CHECK_RC(peer_namespace_ref_at_pinned(net->p[b], net->uid[holder], pk, key, sig1, got), PEER_OK);
        CHECK(memcmp(got, v1, 32) == 0);
        CHECK_RC(peer_namespace_ref_at(net->p[b], net->uid[holder], pk, other_key, got, sig), PEER_NOT_FOUND);
    }
    CHECK_RC(peer_namespace_ref_at(net->p[b], unknown, pk, key, got, sig), PEER_ERR_UNREACHABLE);

    /* a later set, from another peer, wins */
    CHECK_RC(peer_namespace_set(net->p[b], sk, pk, key, v2, sig2), PEER_OK);
    CHECK(memcmp(sig1, sig2, 64) != 0);
    CHECK_RC(peer_namespace_ref(net->p[a], pk, key, got, sig), PEER_OK);
    CHECK(memcmp(got, v2, 32) == 0 && memcmp(sig, sig2, 64) == 0);
    CHECK_RC(peer_namespace_ref_pinned(net->p[a], pk, key, sig2, got), PEER_OK);
    CHECK(memcmp(got, v2, 32) == 0);
    /* The old version may linger on a peer the second set did not reach (a lookup cache);
     * a pinned read finds exactly that version or nothing, never another one. */
    memset(got, 0xEE, 32);
    rc = peer_namespace_ref_pinned(net->p[a], pk, key, sig1, got);
    CHECK(rc == PEER_NOT_FOUND ? got[0] == 0xEE : rc == PEER_OK && memcmp(got, v1, 32) == 0);
    /* Every local answer is one of the two signed versions; the nearest peers have v2. */
    holders = 0;
    holder = -1;
    for (i = 0; i < net->n; i++) {
        rc = peer_namespace_ref_at(net->p[a], net->uid[i], pk, key, got, sig);
        CHECK(rc == PEER_OK || rc == PEER_NOT_FOUND);
        if (rc != PEER_OK)
            continue;
        CHECK((memcmp(got, v1, 32) == 0 && memcmp(sig, sig1, 64) == 0) ||
              (memcmp(got, v2, 32) == 0 && memcmp(sig, sig2, 64) == 0));
        if (memcmp(got, v2, 32) == 0) {
            holders++;
            if (holder < 0)
                holder = i;
        }
    }
    CHECK(holders >= 1);
    if (holder >= 0) {
        CHECK_RC(peer_namespace_ref_at_pinned(net->p[a], net->uid[holder], pk, key, sig2, got), PEER_OK);
        CHECK(memcmp(got, v2, 32) == 0);
        /* a peer keeps one version of a record */
        CHECK_RC(peer_namespace_ref_at_pinned(net->p[a], net->uid[holder], pk, key, sig1, got), PEER_NOT_FOUND);
    }
    /* signature_out may be NULL */
    CHECK_RC(peer_namespace_set(net->p[a], sk, pk, other_key, v1, NULL), PEER_OK);
    CHECK_RC(peer_namespace_ref(net->p[b], pk, other_key, got, NULL), PEER_OK);
    CHECK(memcmp(got, v1, 32) == 0);

    /* wrong secret: refused before any I/O, nothing stored */
    memset(sig, 0xEE, 64);
    CHECK_RC(peer_namespace_set(net->p[a], sk2, pk, key, v1, sig), PEER_ERR_KEY_MISMATCH);
    CHECK(sig[0] == 0xEE && peer_last_error()[0] != '\0');
    CHECK_RC(peer_namespace_ref(net->p[b], pk, key, got, NULL), PEER_OK);
    CHECK(memcmp(got, v2, 32) == 0);
    /* same key under another public key: not found */
    CHECK_RC(peer_namespace_ref(net->p[b], pk2, key, got, NULL), PEER_NOT_FOUND);

    /* bad input */
    CHECK_RC(peer_namespace_set(net->p[a], NULL, pk, key, v1, sig), PEER_ERR_NULL);
    CHECK_RC(peer_namespace_set(net->p[a], sk, pk, key, NULL, sig), PEER_ERR_NULL);
    CHECK_RC(peer_namespace_ref(net->p[a], pk, key, NULL, sig), PEER_ERR_NULL);
    CHECK_RC(peer_namespace_ref_pinned(net->p[a], pk, key, NULL, got), PEER_ERR_NULL);
    CHECK_RC(peer_namespace_ref_at(net->p[a], NULL, pk, key, got, sig), PEER_ERR_NULL);
}

int main(void)
{
    static struct net net;
    srand(424242);
    if (net_start(&net, NPEERS) != 0) {
        net_stop(&net);
        finish();
        return 1;
    }
    check_bags(&net);
    check_namespaces(&net);
    net_stop(&net);
    /* calls on a freed handle */
    {
        uint8_t k[32], v[32];
        size_t n;
        memset(k, 3, 32);
        CHECK_RC(peer_bag_popular(net.p[0], k, v, 1, &n), PEER_ERR_CLOSED);
        CHECK_RC(peer_namespace_ref(net.p[0], k, k, v, NULL), PEER_ERR_CLOSED);
    }
    return finish();
}
