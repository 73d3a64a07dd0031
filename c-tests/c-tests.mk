# C tests of the C ABI; the main Makefile does `include c-tests/c-tests.mk`.
#
#   make check-c       build libpeer.so (release) and the C tests under AddressSanitizer
#                      (leak checking on), and run each; fails on any failed check or ASan report
#                      (check-c-header first: the header compiles as strict C99 and as C++)
#   make check-header-fresh
#                      fail when include/peer.h is not what build.rs generates (without git)
#
# Overridable: CC, CXX, CARGO, LIBPEER_DIR (directory holding libpeer.so; default target/release).
# The tests find libpeer.so through an rpath to LIBPEER_DIR, so no LD_LIBRARY_PATH is needed.

CARGO ?= cargo
LIBPEER_DIR ?= target/release
C_TEST_OUT := target/c-tests
C_TEST_NAMES := test_core test_bags test_durable
C_TEST_BINS := $(addprefix $(C_TEST_OUT)/,$(C_TEST_NAMES))
C_TEST_CFLAGS := -std=c99 -Wall -Wextra -Werror -pedantic -g -O1 -fsanitize=address \
                 -fno-omit-frame-pointer -Iinclude
C_TEST_LDFLAGS := -fsanitize=address -L$(LIBPEER_DIR) -Wl,-rpath,$(abspath $(LIBPEER_DIR)) \
                  -lpeer -pthread
# Rust allocates with malloc, so ASan sees (and leak-checks) libpeer's buffers too.
C_TEST_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1

.PHONY: check-c check-c-header check-header-fresh c-tests-libpeer

c-tests-libpeer:
	$(CARGO) build --release --lib

$(C_TEST_BINS): $(C_TEST_OUT)/%: c-tests/%.c c-tests/harness.h include/peer.h c-tests-libpeer
	@mkdir -p $(C_TEST_OUT)
	$(CC) $(C_TEST_CFLAGS) -o $@ $< $(C_TEST_LDFLAGS)

check-c: check-c-header $(C_TEST_BINS)
	@set -e; for t in $(C_TEST_BINS); do \
	  echo "== $$t"; \
	  $(C_TEST_ENV) timeout 300 $$t; \
	done

# The generated header must compile as strict C99 and as C++ (run by check-c).
check-c-header: include/peer.h
	@mkdir -p $(C_TEST_OUT)
	printf '#include "peer.h"\nint main(void) { return peer_max_value_size() == PEER_MAX_VALUE_SIZE ? 0 : 1; }\n' \
	  > $(C_TEST_OUT)/header_only.c
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -c $(C_TEST_OUT)/header_only.c \
	  -o $(C_TEST_OUT)/header_only.o
	@if command -v $(CXX) >/dev/null 2>&1; then \
	  echo "$(CXX) -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -c header_only.c"; \
	  $(CXX) -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -c $(C_TEST_OUT)/header_only.c \
	    -o $(C_TEST_OUT)/header_only_cxx.o; \
	else echo "check-c-header: no $(CXX), C++ compile of the header skipped"; fi

# Regenerate the header without touching include/peer.h and compare (independent of git).
# It reruns build.rs with another environment, so the next plain build recompiles the crate.
check-header-fresh:
	PEER_HEADER_NO_WRITE=1 $(CARGO) test --release --lib ffi::tests::header_is_fresh
