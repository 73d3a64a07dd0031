#!/usr/bin/env bash
# Installs the Chez library (peer) into LIBDIR, a directory of Chez's library path, keeping
# the sources' layout: LIBDIR/peer.sls is (peer), LIBDIR/peer/ffi.sls is (peer ffi), ...
# Sources only: Chez compiles them when a program imports them, so nothing installed depends
# on the exact Chez build. Called by `make install` / `make uninstall`.
#   bash bindings/chez/install.sh [--uninstall] LIBDIR
set -euo pipefail
usage() { echo "usage: $0 [--uninstall] LIBDIR" >&2; exit 2; }
uninstall=0
if [ "${1:-}" = --uninstall ]; then uninstall=1; shift; fi
[ $# -eq 1 ] && [ -n "$1" ] || usage
libdir=$1
src=$(cd "$(dirname "$0")" && pwd)

# The library's files, relative to bindings/chez (bench-ffi.ss and the README stay behind).
cd "$src"
shopt -s nullglob
files=(peer.sls peer/*.sls)
[ -f peer.sls ] && [ ${#files[@]} -gt 1 ] || { echo "chez install: no library sources in $src" >&2; exit 1; }

if [ $uninstall = 1 ]; then
    for f in "${files[@]}"; do rm -f "$libdir/$f"; done
    # Only the directory this script made, and only once empty; LIBDIR itself is shared.
    if [ -d "$libdir/peer" ]; then rmdir --ignore-fail-on-non-empty "$libdir/peer"; fi
    exit 0
fi

# Existing directories (a system one such as /usr/share/r6rs) keep their mode.
for d in "$libdir" "$libdir/peer"; do
    [ -d "$d" ] || install -d -m 0755 "$d"
done
for f in "${files[@]}"; do
    install -m 0644 "$f" "$libdir/$f"
done
