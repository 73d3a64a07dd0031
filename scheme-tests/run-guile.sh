#!/usr/bin/env bash
# Runs the portable suite (the files of scheme-tests/suite-files) under Guile with the (peer) library of
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
# The library's modules, each after those it uses. One Guile per module: compiling a module
# in the process that compiled the ones it uses sees them half made (their macros, none of
# their definitions), and the compiled code then misses their private bindings.
for name in peer/ffi peer/errors peer/handles peer/scratch peer/options peer/envelope \
            peer/worker peer/transport peer; do
    "$GUILE" --no-auto-compile -L "$root/bindings/guile" -C "$cache/go" -c "
      (use-modules (system base compile))
      (compile-file \"$root/bindings/guile/$name.scm\" #:output-file \"$cache/go/$name.go\")" \
        >>"$cache/compile.log" 2>&1 \
        || { cat "$cache/compile.log" >&2; echo "run-guile: compiling the (peer) library failed" >&2; exit 1; }
done

# The suite's files, in order (scheme-tests/suite-files), into one top level: all but the
# last with -l, the last as the script. The child process of the two-process test is started
# by the prelude's spawn-child with the same Guile, load path and compiled library.
files=()
while read -r name; do [ -n "$name" ] && files+=("$here/$name"); done <"$here/suite-files"
loads=()
for f in "${files[@]:0:${#files[@]}-1}"; do loads+=(-l "$f"); done
export GUILE PEER_GUILE_LIB=$root/bindings/guile PEER_GUILE_GO=$cache/go PEER_GUILE_TESTS=$here
# Bounded: the suite's slowest wait is a few request timeouts.
timeout 900 "$GUILE" --no-auto-compile -L "$root/bindings/guile" -C "$cache/go" \
    -l "$here/guile-prelude.scm" "${loads[@]}" "${files[-1]}" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

. "$here/verdict.sh"
verdict run-guile "$out" "$status"
