/* Options, data directories, expiry and eviction through the C ABI: peer_options_init and
 * peer_new_with (defaults, bad options, a caller's older and smaller struct), a data directory
 * that keeps the uid and refuses a second live peer, records that expire once their publisher
 * forgets them while republished ones live on (short intervals), and a full store that evicts
 * by the documented order. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stddef.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char dir[64];

static void remove_dir(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/peer.redb", dir);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

static void check_options(void)
{
    struct peer_options o;
    struct peer *p = NULL, *q = NULL;
    uint8_t uid[PEER_KEY_LEN], uid2[PEER_KEY_LEN];

    memset(&o, 0xAB, sizeof o);
    peer_options_init(&o);
    CHECK_RC(peer_options_init_sized(NULL, sizeof o), PEER_ERR_NULL);
    CHECK_RC(peer_options_init_sized(&o, 3), PEER_ERR_INVALID);
    CHECK(o.size == sizeof o);
    CHECK(o.replication == 0 && o.data_dir == NULL && o.republish_s == 0 && o.expire_s == 0);
    CHECK(o.address_limits == 0);

    /* No uid and no directory: a fresh random uid. NULL options: all defaults. */
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &p), PEER_OK);
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, NULL, &q), PEER_OK);
    if (p && q) {
        CHECK_RC(peer_uid(p, uid), PEER_OK);
        CHECK_RC(peer_uid(q, uid2), PEER_OK);
        CHECK(memcmp(uid, uid2, PEER_KEY_LEN) != 0);
    }
    peer_free(p);
    peer_free(q);
    p = NULL;

    o.replication = 4;
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &p), PEER_ERR_INVALID);
    CHECK(p == NULL);
    o.replication = 0;
    CHECK_RC(peer_new_with(NULL, NULL, 0, &o, &p), PEER_ERR_NULL);
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, NULL), PEER_ERR_NULL);
    o.size = 3;
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &p), PEER_ERR_INVALID);
    o.data_dir = "";
    o.size = sizeof o;
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &p), PEER_ERR_INVALID);
    o.data_dir = NULL;

    /* Address limits: 0 default, 1 strict (loopback counted), 2 off; nothing else. */
    for (uint32_t code = 0; code <= 2; code++) {
        o.address_limits = code;
        CHECK_RC(peer_new_with(NULL, "127.0.1.1", 0, &o, &p), PEER_OK);
        peer_free(p);
        p = NULL;
    }
    o.address_limits = 3;
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &p), PEER_ERR_INVALID);
    CHECK(p == NULL && strstr(peer_last_error(), "address_limits") != NULL);
    o.address_limits = 0;

    /* A caller compiled against an older, shorter struct (up to expire_s): initialising it
     * writes nothing past it, and peer_new_with reads nothing past it. */
    {
        unsigned char old[sizeof o + 16];
        size_t old_size = offsetof(struct peer_options, expire_s) + sizeof o.expire_s;
        memset(old, 0xEE, sizeof old);
        CHECK_RC(peer_options_init_sized((struct peer_options *)old, old_size), PEER_OK);
        CHECK(((struct peer_options *)old)->size == old_size);
        for (size_t i = old_size; i < sizeof old; i++)
            CHECK(old[i] == 0xEE);
        CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, (struct peer_options *)old, &p), PEER_OK);
        peer_free(p);
        p = NULL;
    }

    /* A caller compiled against a struct with only size and replication: the fields past
     * its size are not read (here they hold garbage that would be refused). */
    memset(&o, 0xFF, sizeof o);
    o.size = offsetof(struct peer_options, replication) + sizeof o.replication;
    o.replication = 6;
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &p), PEER_OK);
    peer_free(p);
    p = NULL;

    CHECK_RC(peer_forget(NULL, uid), PEER_ERR_NULL);
}

static void check_data_dir(void)
{
    struct peer_options o;
    struct peer *p = NULL, *q = NULL;
    uint8_t uid[PEER_KEY_LEN], again[PEER_KEY_LEN], other[PEER_KEY_LEN];

    snprintf(dir, sizeof dir, "/tmp/peer-c-test-XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    peer_options_init(&o);
    o.data_dir = dir;
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &p), PEER_OK);
    CHECK_RC(peer_uid(p, uid), PEER_OK);
    /* A directory held by a live peer is refused, not shared. */
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &q), PEER_ERR_BUSY);
    CHECK(q == NULL);
    peer_free(p);
    /* Reopened: the same uid, saved there; another uid for it is refused. */
    CHECK_RC(peer_new_with(NULL, "127.0.0.1", 0, &o, &q), PEER_OK);
    CHECK_RC(peer_uid(q, again), PEER_OK);
    CHECK(memcmp(uid, again, PEER_KEY_LEN) == 0);
    peer_free(q);
    q = NULL;
    peer_random_uid(other);
    CHECK_RC(peer_new_with(other, "127.0.0.1", 0, &o, &q), PEER_ERR_INVALID);
    CHECK_RC(peer_new_with(uid, "127.0.0.1", 0, &o, &q), PEER_OK);
    peer_free(q);
    remove_dir();
}

static int found(struct peer *p, const uint8_t key[PEER_KEY_LEN])
{
    uint8_t *v = NULL;
    size_t len = 0;
    int rc = peer_ref(p, key, &v, &len);
    if (v)
        peer_bytes_free(v, len);
    return rc;
}

/* Six peers whose values live 2 s and are republished every second: a value its publisher
 * forgot is gone within its lifetime; the one it did not forget is still there after it. */
static void check_expiry(void)
{
    static struct net net;
    struct peer_options o;
    uint8_t kept[PEER_KEY_LEN], dropped[PEER_KEY_LEN];
    const char *a = "a value its publisher keeps", *b = "a value its publisher forgets";
    int i, rc = PEER_OK;

    peer_options_init(&o);
    o.expire_s = 2;
    o.republish_s = 1;
    if (net_start_with(&net, 6, &o) != 0) {
        net_stop(&net);
        return;
    }
    CHECK_RC(peer_set(net.p[0], (const uint8_t *)a, strlen(a), kept), PEER_OK);
    CHECK_RC(peer_set(net.p[0], (const uint8_t *)b, strlen(b), dropped), PEER_OK);
    CHECK_RC(found(net.p[3], dropped), PEER_OK);
    CHECK_RC(peer_forget(net.p[0], dropped), PEER_OK);
    CHECK_RC(peer_forget(net.p[0], dropped), PEER_NOT_FOUND);
    /* Bounded: 2 s of lifetime, polled for at most 6 s. */
    for (i = 0; i < 60; i++) {
        rc = found(net.p[3], dropped);
        if (rc == PEER_NOT_FOUND)
            break;
        sleep_ms(100);
    }
    CHECK_RC(rc, PEER_NOT_FOUND);
    CHECK(i >= 10); /* it lived about its lifetime, not less */
    /* Two more lifetimes: the kept value is republished and still found everywhere. */
    sleep_ms(4000);
    for (i = 1; i < 6; i++)
        CHECK_RC(found(net.p[i], kept), PEER_OK);
    CHECK_RC(found(net.p[5], dropped), PEER_NOT_FOUND);
    net_stop(&net);
}

/* The documented bound (README "Storage"): 100,000 values per peer. */
#define MAX_VALUES 100000

/* One peer alone holds every value it stores. Past the bound, the next value evicts the
 * value farthest from the peer's uid (the other half of the id space), soonest to expire
 * first: the earliest stored among those. */
static uint8_t stored[MAX_VALUES + 1][PEER_KEY_LEN];

static void check_eviction(void)
{
    struct peer *p = NULL;
    uint8_t uid[PEER_KEY_LEN];
    struct peer_stats st;
    int i, victim = -1, bad = 0;
    uint32_t n;

    peer_random_uid(uid);
    CHECK_RC(peer_new(uid, "127.0.0.1", 0, 5, &p), PEER_OK);
    if (!p)
        return;
    for (n = 0; n <= MAX_VALUES; n++) {
        uint8_t value[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        if (peer_set(p, value, sizeof value, stored[n]) != PEER_OK) {
            bad++;
            break;
        }
        if (victim < 0 && ((stored[n][0] ^ uid[0]) & 0x80))
            victim = (int)n;
    }
    CHECK(bad == 0);
    peer_stats_init(&st);
    CHECK_RC(peer_stats(p, &st), PEER_OK);
    CHECK(st.values == MAX_VALUES);
    CHECK(victim >= 0);
    if (victim >= 0)
        CHECK_RC(found(p, stored[victim]), PEER_NOT_FOUND);
    CHECK_RC(found(p, stored[MAX_VALUES]), PEER_OK);
    for (i = 0; i < 200; i++) {
        int k = pick(MAX_VALUES);
        if (k != victim && found(p, stored[k]) != PEER_OK)
            bad++;
    }
    CHECK(bad == 0);
    peer_free(p);
}

int main(void)
{
    srand(9);
    check_options();
    check_data_dir();
    check_expiry();
    check_eviction();
    return finish();
}
