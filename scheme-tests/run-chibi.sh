#!/usr/bin/env bash
# Runs the portable suite (the files scheme-tests/suite-files lists) under Chibi Scheme with
# the (peer) library of bindings/chibi. Env: CHIBI (default: the wrapper
# scripts/install-chibi.sh installs in .deps/chibi, installed on first use), LIBPEER_DIR
# (directory of libpeer.so, default target/release). Exit 0 only if the suite's final line
# reports 0 failures.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
LIBPEER_DIR=${LIBPEER_DIR:-target/release}
case $LIBPEER_DIR in /*) ;; *) LIBPEER_DIR=$root/$LIBPEER_DIR ;; esac
export LIBPEER_DIR

if [ ! -f "$LIBPEER_DIR/libpeer.so" ]; then
    echo "run-chibi: $LIBPEER_DIR/libpeer.so not found (build with cargo build --release)" >&2
    exit 1
fi

if [ -z "${CHIBI:-}" ]; then
    bash "$root/scripts/install-chibi.sh" || { echo "run-chibi: installing Chibi failed" >&2; exit 1; }
    CHIBI=$root/.deps/chibi/bin/chibi
fi
# The suite runs from scheme-tests/ (see below): a relative path to Chibi must not break.
case $CHIBI in /*) ;; */*) CHIBI=$PWD/$CHIBI ;; esac
# The stub finds libpeer (by its soname) through its rpath, set by build.sh; the wrapper also
# puts this directory on the loader's path.
export CHIBI_LIBRARY_PATH=$LIBPEER_DIR

LIBPEER_DIR=$LIBPEER_DIR bash "$root/bindings/chibi/build.sh" \
    || { echo "run-chibi: building the Chibi stub failed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/peer-chibi.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/out.log
# Data directories the suite makes (the prelude's temp-path): removed with $work.
export PEER_TEST_DIR=$work/data
mkdir -p "$PEER_TEST_DIR"
# What the prelude's spawn-child runs: the same Chibi, module path and child prelude.
export PEER_CHIBI=$CHIBI
export PEER_CHIBI_MODULE_PATH=$root/bindings/chibi:$root/build/chibi
export PEER_CHIBI_CHILD=$here/chibi-child-prelude.scm

# One program: the prelude (itself, so that its imports are the program's), then the
# suite's files in order.
{
    cat "$here/chibi-prelude.scm"
    while read -r f; do
        [ -n "$f" ] && echo "(include \"$f\")"
    done <"$here/suite-files"
} >"$work/main.scm"

# Bounded: the suite's slowest wait is a few request timeouts. Chibi's `include` reads paths
# relative to the working directory: the preludes include their neighbours from here.
(cd "$here" && timeout 900 "$CHIBI" -I "$root/bindings/chibi" -I "$root/build/chibi" \
    "$work/main.scm") 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

. "$here/verdict.sh"
verdict run-chibi "$out" "$status"
