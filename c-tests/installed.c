/* Built by scripts/install-test.sh against an installed libpeer, with nothing but
 * `pkg-config --cflags --libs peer`: two peers share a value; prints "installed c ok". */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c99 */
#include <peer.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* `p` admits the peer that connected to it once it has proved that peer's address (its own
 * introduction, answered), which may end after the connect returned: wait for it, bounded. */
static int knows_one_contact(struct peer *p, struct peer_stats *st)
{
    struct timespec ms10 = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 500; i++) {
        if (peer_stats(p, st) != PEER_OK)
            return 0;
        if (st->contacts == 1)
            return 1;
        nanosleep(&ms10, NULL);
    }
    return 0;
}

int main(void)
{
    uint8_t ua[PEER_KEY_LEN], ub[PEER_KEY_LEN], key[PEER_KEY_LEN];
    struct peer *a = NULL, *b = NULL;
    struct peer_stats st;
    uint8_t *v = NULL;
    size_t len = 0;
    int ok;

    peer_random_uid(ua);
    peer_random_uid(ub);
    if (peer_new(ua, "127.0.0.1", 0, 5, &a) != PEER_OK || peer_new(ub, "127.0.0.1", 0, 5, &b) != PEER_OK) {
        fprintf(stderr, "installed.c: peer_new: %s\n", peer_last_error());
        return 1;
    }
    peer_stats_init(&st);
    ok = peer_connect(b, "127.0.0.1", peer_port(a)) == PEER_OK
         && peer_set(b, (const uint8_t *)"installed", 9, key) == PEER_OK
         && peer_ref(a, key, &v, &len) == PEER_OK && len == 9 && memcmp(v, "installed", 9) == 0
         && knows_one_contact(a, &st)
         && strcmp(peer_version(), PEER_VERSION_STRING) == 0;
    if (v)
        peer_bytes_free(v, len);
    peer_free(a);
    peer_free(b);
    if (!ok) {
        fprintf(stderr, "installed.c: failed: %s\n", peer_last_error());
        return 1;
    }
    printf("installed c ok\n");
    return 0;
}
