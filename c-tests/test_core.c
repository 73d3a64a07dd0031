/* The core calls of the C ABI on a 50-peer loopback network: values set from random peers
 * read back exactly from others, bad input of every kind, freed handles, and a handle freed
 * while another thread is calling on it. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#define NPEERS 50
#define NVALUES 100

static uint8_t keys[NVALUES][PEER_KEY_LEN];
static uint8_t *values[NVALUES];
static size_t lens[NVALUES];

static void check_static_calls(void)
{
    int c;
    CHECK(strcmp(peer_version(), PEER_VERSION_STRING) == 0);
    CHECK(peer_max_value_size() == PEER_MAX_VALUE_SIZE);
    for (c = -10; c <= 1; c++)
        CHECK(peer_strerror(c) != NULL && peer_strerror(c)[0] != '\0');
    CHECK(peer_strerror(12345)[0] != '\0');
    CHECK(strcmp(peer_strerror(PEER_ERR_CLOSED), peer_strerror(PEER_ERR_NULL)) != 0);
}

/* The status table as bindings read it: every PEER_* number listed once, with its symbol. */
static void check_status_table(void)
{
    static const struct { int code; const char *symbol; } expected[] = {
        {PEER_OK, "ok"}, {PEER_NOT_FOUND, "not-found"}, {PEER_ERR_NULL, "null"},
        {PEER_ERR_INVALID, "invalid"}, {PEER_ERR_TOO_LARGE, "too-large"},
        {PEER_ERR_CLOSED, "closed"}, {PEER_ERR_OS, "os"},
        {PEER_ERR_UNREACHABLE, "unreachable"}, {PEER_ERR_NOT_STORED, "not-stored"},
        {PEER_ERR_KEY_MISMATCH, "key-mismatch"}, {PEER_ERR_INTERNAL, "internal"},
        {PEER_ERR_MALFORMED, "malformed"}, {PEER_ERR_BUSY, "busy"}, {PEER_ERR_STORAGE, "storage"},
    };
    const size_t n_expected = sizeof expected / sizeof expected[0];
    int codes[32];
    size_t i, j, n = 12345, count = peer_status_count();

    CHECK(count == n_expected);
    CHECK(count <= sizeof codes / sizeof codes[0]);
    for (i = 0; i < n_expected; i++) {
        const char *s = peer_status_symbol(expected[i].code);
        CHECK(s != NULL && strcmp(s, expected[i].symbol) == 0);
        CHECK(strcmp(peer_strerror(expected[i].code), "unknown status") != 0);
    }
    CHECK(peer_status_symbol(2) == NULL);
    CHECK(peer_status_symbol(-13) == NULL);
    CHECK(peer_status_symbol(12345) == NULL);

    /* short, NULL: an error and nothing written */
    memset(codes, 0x55, sizeof codes);
    CHECK_RC(peer_status_codes(codes, count - 1, &n), PEER_ERR_INVALID);
    CHECK(peer_last_error()[0] != '\0');
    CHECK_RC(peer_status_codes(NULL, count, &n), PEER_ERR_NULL);
    CHECK_RC(peer_status_codes(codes, count, NULL), PEER_ERR_NULL);
    CHECK(n == 12345 && codes[0] == 0x55555555);

    /* a roomy buffer: exactly count codes, each of them once, nothing past them */
    CHECK_RC(peer_status_codes(codes, sizeof codes / sizeof codes[0], &n), PEER_OK);
    CHECK(n == count && codes[n] == 0x55555555);
    for (i = 0; i < n_expected; i++) {
        int seen = 0;
        for (j = 0; j < n; j++)
            seen += codes[j] == expected[i].code;
        CHECK(seen == 1);
    }
    CHECK(codes[0] == PEER_OK && codes[1] == PEER_NOT_FOUND);
}

static void check_bad_new(void)
{
    uint8_t uid[PEER_KEY_LEN];
    struct peer *p = NULL;
    peer_random_uid(uid);
    CHECK_RC(peer_new(NULL, "127.0.0.1", 0, 5, &p), PEER_ERR_NULL);
    CHECK(peer_last_error()[0] != '\0');
    CHECK_RC(peer_new(uid, NULL, 0, 5, &p), PEER_ERR_NULL);
    CHECK_RC(peer_new(uid, "127.0.0.1", 0, 5, NULL), PEER_ERR_NULL);
    CHECK_RC(peer_new(uid, "127.0.0.1", 0, 4, &p), PEER_ERR_INVALID);
    CHECK_RC(peer_new(uid, "127.0.0.1", 0, 21, &p), PEER_ERR_INVALID);
    CHECK_RC(peer_new(uid, "999.1.1.1", 0, 5, &p), PEER_ERR_INVALID);
    CHECK(strstr(peer_last_error(), "999.1.1.1") != NULL);
    /* Names are resolved; these two cannot be names, so no resolver is asked. */
    CHECK_RC(peer_new(uid, "not an address", 0, 5, &p), PEER_ERR_INVALID);
    CHECK_RC(peer_new(uid, "nowhere.invalid", 0, 5, &p), PEER_ERR_INVALID);
    CHECK_RC(peer_new(uid, "\xff\xfe", 0, 5, &p), PEER_ERR_INVALID);
    CHECK_RC(peer_new_external(uid, "not an address", 1, 5, &p), PEER_ERR_INVALID);
    CHECK_RC(peer_new_external(uid, "127.0.0.1", 1, 3, &p), PEER_ERR_INVALID);
    CHECK(p == NULL); /* out-params are written only on success */
    CHECK(peer_port(NULL) == 0);
    peer_free(NULL);
    peer_random_uid(NULL);
    peer_keypair(NULL, NULL);
}

static void check_bad_calls(struct peer *p, const uint8_t *some_key)
{
    uint8_t key[PEER_KEY_LEN], uid[PEER_KEY_LEN];
    uint8_t *big, *v = NULL;
    size_t len = 12345;
    struct peer_stats st;

    memset(key, 0xAB, sizeof key);
    CHECK_RC(peer_uid(NULL, uid), PEER_ERR_NULL);
    CHECK_RC(peer_uid(p, NULL), PEER_ERR_NULL);
    CHECK_RC(peer_connect(p, NULL, 1), PEER_ERR_NULL);
    /* A name that cannot be resolved is a peer nobody answers for: -6, not an argument error. */
    CHECK_RC(peer_connect(p, "not an address", 1), PEER_ERR_UNREACHABLE);
    CHECK_RC(peer_connect(p, "999.1.1.1", 1), PEER_ERR_UNREACHABLE);
    CHECK_RC(peer_connect(p, "nowhere.invalid", 1), PEER_ERR_UNREACHABLE);
    CHECK(strncmp(peer_last_error(), "peer_connect: ", 14) == 0);
    CHECK(strcmp(peer_last_error() + 14, peer_last_error_reason()) == 0);
    CHECK(strstr(peer_last_error_reason(), "nowhere.invalid") != NULL);
    CHECK_RC(peer_connect(NULL, "127.0.0.1", 1), PEER_ERR_NULL);
    CHECK_RC(peer_bootstrap(NULL), PEER_ERR_NULL);
    CHECK_RC(peer_set(p, NULL, 5, key), PEER_ERR_NULL);
    CHECK_RC(peer_set(p, (const uint8_t *)"hello", 5, NULL), PEER_ERR_NULL);
    CHECK(key[0] == 0xAB);
    big = calloc(PEER_MAX_VALUE_SIZE + 1, 1);
    CHECK(big != NULL);
    if (big) {
        CHECK_RC(peer_set(p, big, PEER_MAX_VALUE_SIZE + 1, key), PEER_ERR_TOO_LARGE);
        CHECK(peer_last_error()[0] != '\0');
        CHECK(key[0] == 0xAB);
        free(big);
    }
    CHECK_RC(peer_ref(p, NULL, &v, &len), PEER_ERR_NULL);
    CHECK_RC(peer_ref(p, some_key, NULL, &len), PEER_ERR_NULL);
    CHECK_RC(peer_ref(p, some_key, &v, NULL), PEER_ERR_NULL);
    CHECK(v == NULL && len == 12345);
    CHECK_RC(peer_stats(p, NULL), PEER_ERR_NULL);
    CHECK_RC(peer_stats(NULL, &st), PEER_ERR_NULL);
    peer_bytes_free(NULL, 10);
}

static void check_freed(struct peer *p)
{
    uint8_t key[PEER_KEY_LEN], uid[PEER_KEY_LEN];
    uint8_t *v = NULL;
    size_t len = 0;
    struct peer_stats st;
    peer_stats_init(&st);
    memset(key, 1, sizeof key);
    CHECK_RC(peer_uid(p, uid), PEER_ERR_CLOSED);
    CHECK(peer_last_error()[0] != '\0');
    CHECK(peer_port(p) == 0);
    CHECK_RC(peer_connect(p, "127.0.0.1", 1), PEER_ERR_CLOSED);
    CHECK_RC(peer_bootstrap(p), PEER_ERR_CLOSED);
    CHECK_RC(peer_set(p, (const uint8_t *)"x", 1, key), PEER_ERR_CLOSED);
    CHECK_RC(peer_ref(p, key, &v, &len), PEER_ERR_CLOSED);
    CHECK_RC(peer_bag_publish(p, key, key), PEER_ERR_CLOSED);
    CHECK_RC(peer_stats(p, &st), PEER_ERR_CLOSED);
    CHECK(v == NULL);
    peer_free(p); /* a second free of the same handle is a no-op */
}

/* Value i: a mix of sizes, empty and the maximum included. */
static void make_value(int i)
{
    size_t j;
    if (i == 0)
        lens[i] = 0;
    else if (i == 1)
        lens[i] = PEER_MAX_VALUE_SIZE;
    else if (i % 10 == 0)
        lens[i] = 20000 + (size_t)pick(40000);
    else
        lens[i] = 1 + (size_t)pick(600);
    values[i] = malloc(lens[i] + 1);
    for (j = 0; j < lens[i]; j++)
        values[i][j] = (uint8_t)pick(256);
    if (lens[i] > 0)
        values[i][0] = (uint8_t)i; /* distinct values, distinct keys */
    if (lens[i] > 1)
        values[i][1] = (uint8_t)(i >> 8);
}

/* Read value i from peer `from`; returns 1 when it came back exactly. */
static int read_back(struct peer *from, int i)
{
    uint8_t *v = NULL;
    size_t len = 0;
    int rc = peer_ref(from, keys[i], &v, &len), same;
    if (rc != PEER_OK) {
        fprintf(stderr, "  value %d: peer_ref -> %d (%s) %s\n", i, rc, peer_strerror(rc), peer_last_error());
        return 0;
    }
    same = len == lens[i] && (len == 0 || memcmp(v, values[i], len) == 0);
    if (!same)
        fprintf(stderr, "  value %d: got %zu bytes, expected %zu\n", i, len, lens[i]);
    peer_bytes_free(v, len);
    return same;
}

struct caller {
    struct peer *p;
    uint8_t key[PEER_KEY_LEN];
    int bad_status, closed_seen;
    volatile int calls;
};

/* Calls peer_ref in a loop while the main thread frees the handle: every status must be
 * 0 or 1 until it becomes -4, then stay -4. Bounded: at most 2000 calls. */
static void *caller_thread(void *arg)
{
    struct caller *c = arg;
    int i;
    for (i = 0; i < 2000; i++) {
        uint8_t *v = NULL;
        size_t len = 0;
        int rc = peer_ref(c->p, c->key, &v, &len);
        c->calls++;
        if (rc == PEER_OK)
            peer_bytes_free(v, len);
        if (rc == PEER_ERR_CLOSED) {
            c->closed_seen++;
            if (c->closed_seen >= 3)
                break;
        } else if ((rc != PEER_OK && rc != PEER_NOT_FOUND) || c->closed_seen) {
            c->bad_status++;
        }
    }
    return NULL;
}

/* peer_wire_normalize: the safe reader and canonical writer. */
static void check_normalize(void)
{
    static const char in[] = "#(ref #vu8(1 2 255) #true \"x\")";
    static const char want[] = "#(ref #u8(1 2 255) #t \"x\")";
    uint8_t *out = NULL;
    size_t len = 0;
    CHECK_RC(peer_wire_normalize((const uint8_t *)in, strlen(in), &out, &len), PEER_OK);
    if (out) {
        CHECK(len == strlen(want) && memcmp(out, want, len) == 0 && out[len] == '\0');
        peer_bytes_free(out, len + 1);
    }
    out = NULL;
    CHECK_RC(peer_wire_normalize((const uint8_t *)"#(unclosed", 10, &out, &len), PEER_ERR_MALFORMED);
    CHECK_RC(peer_wire_normalize((const uint8_t *)"#t #t", 5, &out, &len), PEER_ERR_MALFORMED);
    CHECK(out == NULL && peer_last_error()[0] != '\0');
    CHECK_RC(peer_wire_normalize(NULL, 3, &out, &len), PEER_ERR_NULL);
    CHECK_RC(peer_wire_normalize((const uint8_t *)"1", 1, NULL, &len), PEER_ERR_NULL);
}

struct ext_job {
    struct peer *a, *b;
    int connect_rc, set_rc, ref_rc, same;
    volatile int done;
};

/* Runs blocking calls on external peers; they complete only while main() pumps. */
static void *ext_caller(void *arg)
{
    struct ext_job *j = arg;
    static const char value[] = "carried by the program's own transport";
    uint8_t key[PEER_KEY_LEN], *v = NULL;
    size_t len = 0;
    j->connect_rc = peer_connect(j->a, "127.0.0.1", 4002);
    j->set_rc = peer_set(j->a, (const uint8_t *)value, sizeof value, key);
    j->ref_rc = peer_ref(j->b, key, &v, &len);
    if (j->ref_rc == PEER_OK) {
        j->same = len == sizeof value && memcmp(v, value, len) == 0;
        peer_bytes_free(v, len);
    }
    j->done = 1;
    return NULL;
}

/* Two external peers, 127.0.0.1:4001 and :4002 on the program's network; this thread moves
 * every envelope one pops to the other's push. */
static void check_external(struct peer *tcp_peer)
{
    uint8_t ua[PEER_KEY_LEN], ub[PEER_KEY_LEN], *env = NULL;
    struct ext_job job;
    pthread_t t;
    char ip[PEER_IP_BUF_LEN];
    uint16_t port = 0;
    size_t len = 0;
    int i, k, misrouted = 0, moved = 0;

    memset(&job, 0, sizeof job);
    peer_random_uid(ua);
    peer_random_uid(ub);
    CHECK_RC(peer_new_external(ua, "127.0.0.1", 4001, 5, &job.a), PEER_OK);
    CHECK_RC(peer_new_external(ub, "127.0.0.1", 4002, 5, &job.b), PEER_OK);
    if (!job.a || !job.b)
        return;
    CHECK(peer_port(job.a) == 4001);
    CHECK_RC(peer_ext_pop(job.a, 1, ip, &port, &env, &len), PEER_NOT_FOUND);
    CHECK_RC(peer_ext_push(job.a, (const uint8_t *)"#(garbage", 9), PEER_ERR_MALFORMED);
    CHECK_RC(peer_ext_push(job.a, NULL, 5), PEER_ERR_NULL);
    CHECK_RC(peer_ext_pop(job.a, 1, NULL, &port, &env, &len), PEER_ERR_NULL);
    CHECK_RC(peer_ext_pop(tcp_peer, 1, ip, &port, &env, &len), PEER_ERR_INVALID);
    CHECK_RC(peer_ext_push(tcp_peer, (const uint8_t *)"#t", 2), PEER_ERR_INVALID);

    CHECK(pthread_create(&t, NULL, ext_caller, &job) == 0);
    for (i = 0; i < 5000 && !job.done; i++) { /* bounded: at most ~10 s of 1 ms waits */
        struct peer *from[2];
        from[0] = job.a;
        from[1] = job.b;
        for (k = 0; k < 2; k++) {
            if (peer_ext_pop(from[k], 1, ip, &port, &env, &len) != PEER_OK)
                continue;
            if (strcmp(ip, "127.0.0.1") == 0 && (port == 4001 || port == 4002)) {
                if (peer_ext_push(port == 4001 ? job.a : job.b, env, len) == PEER_OK)
                    moved++;
                else
                    misrouted++;
            } else {
                misrouted++;
            }
            peer_bytes_free(env, len);
        }
    }
    if (!job.done) { /* unblock the caller before joining: its calls return -4 */
        peer_free(job.a);
        peer_free(job.b);
    }
    pthread_join(t, NULL);
    CHECK(job.done);
    CHECK(moved > 0 && misrouted == 0);
    CHECK(job.connect_rc == PEER_OK);
    CHECK(job.set_rc == PEER_OK);
    CHECK(job.ref_rc == PEER_OK && job.same);
    peer_free(job.a);
    peer_free(job.b);
    CHECK_RC(peer_ext_pop(job.a, 1, ip, &port, &env, &len), PEER_ERR_CLOSED);
}

/* Addresses: host names, a TCP peer's bound address, an external peer's derived one, and the
 * external value limit. */
static void check_addresses(struct peer *tcp_peer, struct peer *other_tcp)
{
    uint8_t ua[PEER_KEY_LEN], ub[PEER_KEY_LEN], key[PEER_KEY_LEN];
    char ip[PEER_IP_BUF_LEN], ip2[PEER_IP_BUF_LEN];
    uint16_t port = 0, port2 = 0;
    struct peer *a = NULL, *b = NULL;
    uint8_t *big;

    CHECK_RC(peer_address(tcp_peer, ip, &port), PEER_OK);
    CHECK(strcmp(ip, "127.0.0.1") == 0 && port == peer_port(tcp_peer));
    CHECK_RC(peer_address(tcp_peer, NULL, &port), PEER_ERR_NULL);
    CHECK_RC(peer_address(tcp_peer, ip, NULL), PEER_ERR_NULL);
    CHECK_RC(peer_address(NULL, ip, &port), PEER_ERR_NULL);
    /* "localhost" comes from /etc/hosts: resolved, in the peer's family, no resolver asked. */
    CHECK_RC(peer_address(other_tcp, ip, &port), PEER_OK);
    CHECK_RC(peer_connect(tcp_peer, "localhost", port), PEER_OK);

    /* Two uids that share all but their last byte get different derived addresses. */
    peer_random_uid(ua);
    memcpy(ub, ua, sizeof ub);
    ub[PEER_KEY_LEN - 1] ^= 1;
    CHECK_RC(peer_new_external(ua, NULL, 0, 5, &a), PEER_OK);
    CHECK_RC(peer_new_external(ub, NULL, 0, 5, &b), PEER_OK);
    if (!a || !b) {
        peer_free(a);
        peer_free(b);
        return;
    }
    CHECK_RC(peer_address(a, ip, &port), PEER_OK);
    CHECK_RC(peer_address(b, ip2, &port2), PEER_OK);
    CHECK(strncmp(ip, "fd", 2) == 0 && strncmp(ip2, "fd", 2) == 0);
    CHECK(strcmp(ip, ip2) != 0);
    CHECK(port == peer_port(a) && port >= 1024);

    big = calloc(PEER_MAX_EXTERNAL_VALUE_SIZE + 1, 1);
    CHECK(big != NULL);
    if (big) {
        CHECK(peer_max_external_value_size() == PEER_MAX_EXTERNAL_VALUE_SIZE);
        CHECK(PEER_MAX_EXTERNAL_VALUE_SIZE < PEER_MAX_VALUE_SIZE);
        CHECK_RC(peer_set(a, big, PEER_MAX_EXTERNAL_VALUE_SIZE + 1, key), PEER_ERR_TOO_LARGE);
        CHECK(strstr(peer_last_error_reason(), "209689") != NULL);
        free(big);
    }
    peer_free(a);
    peer_free(b);
    CHECK_RC(peer_address(a, ip, &port), PEER_ERR_CLOSED);
}

/* The growable struct, and every figure by name (the names peer-stats and `peer stats` show). */
static void check_stats(struct peer *p)
{
    struct peer_stats st, old;
    struct peer_stat list[600];
    size_t n = 0, m = 0, i, buckets = 0;
    uint64_t contacts_by_bucket = 0, sent_by_kind = 0, sent = 0;

    memset(&st, 0xAB, sizeof st);
    st.size = 0;
    CHECK_RC(peer_stats(p, &st), PEER_ERR_INVALID); /* not initialised */
    peer_stats_init(&st);
    CHECK(st.size == sizeof st && st.contacts == 0);
    CHECK_RC(peer_stats(p, &st), PEER_OK);
    CHECK(st.size == sizeof st);
    CHECK(st.contacts > 0 && st.requests_sent > 0 && st.requests_received > 0);
    CHECK(st.bytes_sent > 0 && st.bytes_received > 0 && st.open_connections > 0);

    /* An older caller's shorter struct: only the fields it has are written. */
    memset(&old, 0xCD, sizeof old);
    old.size = offsetof(struct peer_stats, values);
    CHECK_RC(peer_stats(p, &old), PEER_OK);
    CHECK(old.contacts > 0 && old.values == 0xCDCDCDCDCDCDCDCDull);

    CHECK_RC(peer_stats_list(p, NULL, 0, &n), PEER_OK);
    CHECK(n > 40 && n < sizeof list / sizeof list[0]);
    CHECK_RC(peer_stats_list(p, NULL, 5, &m), PEER_ERR_NULL);
    CHECK_RC(peer_stats_list(p, list, 3, &m), PEER_OK);
    CHECK(m == n && strcmp(list[0].name, "contacts") == 0);
    CHECK_RC(peer_stats_list(p, list, sizeof list / sizeof list[0], &m), PEER_OK);
    CHECK(m >= n);
    for (i = 0; i < m && i < sizeof list / sizeof list[0]; i++) {
        if (strncmp(list[i].name, "bucket-", 7) == 0) {
            buckets++;
            contacts_by_bucket += list[i].value;
        } else if (strncmp(list[i].name, "sent-", 5) == 0) {
            sent_by_kind += list[i].value;
        } else if (strcmp(list[i].name, "requests-sent") == 0) {
            sent = list[i].value;
        }
    }
    CHECK(buckets > 0 && contacts_by_bucket == list[0].value);
    CHECK(sent > 0 && sent_by_kind == sent);
}

int main(void)
{
    static struct net net;
    int i, ok, victim;
    uint8_t missing[PEER_KEY_LEN], uid[PEER_KEY_LEN];
    uint8_t *v = NULL;
    size_t len = 0;

    srand(20240611);
    check_static_calls();
    check_status_table();
    check_bad_new();

    if (net_start(&net, NPEERS) != 0) {
        net_stop(&net);
        finish();
        return 1;
    }
    for (i = 0; i < NPEERS; i++)
        CHECK(peer_port(net.p[i]) != 0);
    CHECK_RC(peer_uid(net.p[3], uid), PEER_OK);
    CHECK(memcmp(uid, net.uid[3], PEER_KEY_LEN) == 0);
    check_addresses(net.p[1], net.p[2]);

    /* 100 values, each set from a random peer and read back from a random other one. */
    ok = 0;
    for (i = 0; i < NVALUES; i++) {
        int from = random_live(&net, -1), to;
        int rc;
        make_value(i);
        memset(keys[i], 0, PEER_KEY_LEN);
        rc = peer_set(net.p[from], values[i], lens[i], keys[i]);
        if (rc != PEER_OK) {
            fprintf(stderr, "  value %d: peer_set -> %d (%s) %s\n", i, rc, peer_strerror(rc), peer_last_error());
            continue;
        }
        to = random_live(&net, from);
        ok += read_back(net.p[to], i);
    }
    CHECK(ok == NVALUES);

    /* A key nobody stored. */
    peer_random_uid(missing);
    v = NULL;
    CHECK_RC(peer_ref(net.p[5], missing, &v, &len), PEER_NOT_FOUND);
    CHECK(v == NULL);

    check_bad_calls(net.p[2], keys[2]);
    check_stats(net.p[1]);

    /* Free a peer mid-test: its handle is dead, the rest of the network carries on. */
    victim = 7;
    {
        uint16_t dead_port = peer_port(net.p[victim]);
        peer_free(net.p[victim]);
        net.live[victim] = 0;
        check_freed(net.p[victim]);
        /* Nobody listens there any more. */
        CHECK_RC(peer_connect(net.p[0], "127.0.0.1", dead_port), PEER_ERR_UNREACHABLE);
    }
    ok = 0;
    for (i = 0; i < NVALUES; i++)
        ok += read_back(net.p[random_live(&net, victim)], i);
    CHECK(ok == NVALUES);
    {
        static uint8_t extra[300];
        uint8_t k[PEER_KEY_LEN];
        int from = random_live(&net, -1);
        memcpy(extra, "set after a peer left", 21);
        CHECK_RC(peer_set(net.p[from], extra, sizeof extra, k), PEER_OK);
        CHECK_RC(peer_ref(net.p[random_live(&net, from)], k, &v, &len), PEER_OK);
        if (v) {
            CHECK(len == sizeof extra && memcmp(v, extra, len) == 0);
            peer_bytes_free(v, len);
        }
    }

    /* A handle freed while another thread is blocked in calls on it. */
    {
        pthread_t t;
        struct caller c;
        victim = 9;
        memset(&c, 0, sizeof c);
        c.p = net.p[victim];
        memcpy(c.key, missing, PEER_KEY_LEN); /* a network lookup each time, never local */
        CHECK(pthread_create(&t, NULL, caller_thread, &c) == 0);
        for (i = 0; c.calls < 5 && i < 10000; i++) { /* at most ~10 s */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        peer_free(net.p[victim]);
        net.live[victim] = 0;
        pthread_join(t, NULL);
        CHECK(c.bad_status == 0);
        CHECK(c.closed_seen > 0);
    }

    check_normalize();
    check_external(net.p[0]);

    net_stop(&net);
    for (i = 0; i < NVALUES; i++)
        free(values[i]);
    return finish();
}
