/* Built by scripts/install-test.sh against an installed libpeer, with nothing but
 * `pkg-config --cflags --libs peer`: two peers share a value; prints "installed c ok". */
#include <peer.h>
#include <stdio.h>
#include <string.h>

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
         && peer_stats(a, &st) == PEER_OK && st.contacts == 1
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
