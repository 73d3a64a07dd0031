#!/usr/bin/env bash
# Runs the shared Scheme suite under Chez Scheme. Pass/fail comes from the suite's last line,
# "N passed, M failed": the run fails unless it is there with M = 0.
#   env: CHEZ (default scheme), LIBPEER_DIR (default target/release), CHEZ_TIMEOUT (s),
#        SUITE (one file to run instead of the files listed in scheme-tests/suite-files)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${LIBPEER_DIR:-target/release}
# A relative directory is taken from the caller's directory, else from the repository root.
case $lib in
  /*) ;;
  *) if [ -d "$(pwd)/$lib" ]; then lib=$(pwd)/$lib; else lib=$root/$lib; fi ;;
esac
if [ ! -f "$lib/libpeer.so" ]; then
  echo "run-chez: no libpeer.so in $lib (build with: cargo build --release)" >&2
  exit 2
fi
chez=${CHEZ:-scheme}
# The prelude's spawn-child starts the suite's child processes with the same Chez.
export CHEZ=$chez
if [ -n "${SUITE:-}" ]; then
  files=("$SUITE")
else
  files=()
  while read -r name; do
    [ -n "$name" ] && files+=("$root/scheme-tests/$name")
  done < "$root/scheme-tests/suite-files"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/peer-chez.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
out=$work/out.log
# Data directories the suite makes (the prelude's temp-path): removed with $work.
export PEER_TEST_DIR=$work/data
mkdir -p "$PEER_TEST_DIR"
LIBPEER_DIR=$lib timeout "${CHEZ_TIMEOUT:-900}" "$chez" \
  --libdirs "$root/bindings/chez" \
  --script "$root/scheme-tests/chez-prelude.ss" "${files[@]}" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
. "$root/scheme-tests/verdict.sh"
verdict run-chez "$out" "$status"
