#!/usr/bin/env bash
# Runs the portable suite (scheme-tests/suite.scm) under Guile with the (peer) library of
# bindings/guile. Env: GUILE (default guile), LIBPEER_DIR (directory of libpeer.so, default
# target/release). Exit 0 only if the suite's final line reports 0 failures.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
GUILE=${GUILE:-guile}
LIBPEER_DIR=${LIBPEER_DIR:-target/release}
# A relative directory is taken from the caller's directory, else from the repository root.
case $LIBPEER_DIR in
    /*) ;;
    *) if [ -d "$PWD/$LIBPEER_DIR" ]; then LIBPEER_DIR=$PWD/$LIBPEER_DIR; else LIBPEER_DIR=$root/$LIBPEER_DIR; fi ;;
esac
export LIBPEER_DIR

if [ ! -f "$LIBPEER_DIR/libpeer.so" ]; then
    echo "run-guile: $LIBPEER_DIR/libpeer.so not found (build with cargo build --release)" >&2
    exit 1
fi

# Compile the library once into a private cache (quiet, and the pump loop runs compiled);
# the suite itself is interpreted. GUILE_AUTO_COMPILE=0 keeps ";;; compiling" lines away.
cache=$(mktemp -d "${TMPDIR:-/tmp}/peer-guile.XXXXXX")
out=$cache/out.log
trap 'rm -rf "$cache"' EXIT
export GUILE_AUTO_COMPILE=0 XDG_CACHE_HOME=$cache
# Data directories the suite makes (the prelude's temp-path): removed with the cache.
export PEER_TEST_DIR=$cache/data
mkdir -p "$cache/go" "$PEER_TEST_DIR"
"$GUILE" --no-auto-compile -L "$root/bindings/guile" -C "$cache/go" -c "
  (use-modules (system base compile))
  (for-each (lambda (name)
              (compile-file (string-append \"$root/bindings/guile/\" name \".scm\")
                            #:output-file (string-append \"$cache/go/\" name \".go\")))
            '(\"peer/ffi\" \"peer/errors\" \"peer/handles\" \"peer/scratch\" \"peer/options\"
              \"peer/envelope\" \"peer/worker\" \"peer/transport\" \"peer\"))" \
    >"$cache/compile.log" 2>&1 \
    || { cat "$cache/compile.log" >&2; echo "run-guile: compiling the (peer) library failed" >&2; exit 1; }

# Bounded: the suite's slowest wait is a few request timeouts.
timeout 900 "$GUILE" --no-auto-compile -L "$root/bindings/guile" -C "$cache/go" \
    -l "$here/guile-prelude.scm" "$here/suite.scm" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

. "$here/verdict.sh"
verdict run-guile "$out" "$status"
