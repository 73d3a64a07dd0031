#!/usr/bin/env bash
# Installs the Chibi library (peer); `make install` and `make uninstall` call it:
#   LIBPEER_DIR=target/release bash bindings/chibi/install.sh MODDIR LIBDIR
#   bash bindings/chibi/install.sh --uninstall MODDIR
# Into MODDIR, a directory of Chibi's module path: peer.sld, the .scm files it includes and
# the compiled stub peer.so, side by side. Chibi looks for both `(include "...")` and
# `(include-shared "peer")` by name along the whole module path (not next to the .sld), so
# one directory of it holding all of them is enough: CHIBI_MODULE_PATH=MODDIR, or nothing
# when MODDIR is in Chibi's default path (/usr/local/share/snow).
#
# The stub is built (bindings/chibi/build.sh, in a temporary directory) against the build
# tree's libpeer (LIBPEER_DIR, default target/release; for linking only) and needs libpeer
# by its soname (libpeer.so.0) through an rpath to LIBDIR, the installed library's final
# directory (without DESTDIR), so a program needs no LD_LIBRARY_PATH. Files 0644 (a shared
# library needs no execute bit), directories made 0755. --uninstall removes exactly the
# files installed (MODDIR itself is shared and stays).
set -euo pipefail
umask 022
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fail() { echo "bindings/chibi/install.sh: $*" >&2; exit 1; }

uninstall=0
if [ "${1:-}" = --uninstall ]; then uninstall=1; shift; fi
if [ $uninstall = 1 ]; then
    [ $# -eq 1 ] && [ -n "$1" ] || fail "usage: install.sh --uninstall MODDIR"
else
    [ $# -eq 2 ] && [ -n "$1" ] && [ -n "$2" ] \
        || fail "usage: install.sh [--uninstall] MODDIR LIBDIR"
fi
moddir=$1

# The Scheme files: peer.sld and what its (include ...) names, so a new file cannot be
# left behind; the stub's name is the one its (include-shared ...) gives.
includes=$(tr '\n' ' ' <"$here/peer.sld" | grep -o '(include "[^)]*)' | grep -o '"[^"]*"' \
           | tr -d '"')
shared=$(sed -n 's/.*(include-shared "\([^"]*\)").*/\1/p' "$here/peer.sld")
[ -n "$includes" ] && [ "$shared" = peer ] || fail "cannot read the includes of $here/peer.sld"
files=(peer.sld $includes)
for f in "${files[@]}"; do
    [ -f "$here/$f" ] || fail "peer.sld includes $f, but $here/$f does not exist"
done

if [ $uninstall = 1 ]; then
    for f in "${files[@]}" "$shared.so"; do rm -f "$moddir/$f"; done
    exit 0
fi

libdir=$2
case $libdir in
    /*) ;;
    *) fail "LIBDIR must be an absolute path (it becomes the stub's rpath): $libdir" ;;
esac
LIBPEER_DIR=${LIBPEER_DIR:-$root/target/release}
[ -f "$LIBPEER_DIR/libpeer.so" ] \
    || fail "$LIBPEER_DIR/libpeer.so not found: build libpeer first (or set LIBPEER_DIR)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/peer-chibi-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
LIBPEER_DIR=$LIBPEER_DIR CHIBI_OUT=$tmp PEER_RPATH=$libdir \
    bash "$here/build.sh" >"$tmp/build.log" 2>&1 \
    || { cat "$tmp/build.log" >&2; fail "building the stub failed"; }

# The stub must name libpeer as the dynamic loader will find it installed: by its soname,
# through LIBDIR (a stub naming libpeer.so would need the development symlink).
soname=$(readelf -d "$LIBPEER_DIR/libpeer.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
needed=$(readelf -d "$tmp/$shared.so" | sed -n 's/.*(NEEDED).*\[\(libpeer[^]]*\)\]/\1/p')
runpath=$(readelf -d "$tmp/$shared.so" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] && [ "$needed" = "$soname" ] \
    || fail "the stub needs '$needed', not libpeer's soname '$soname'"
[ "$runpath" = "$libdir" ] || fail "the stub's rpath is '$runpath', not $libdir"

[ -d "$moddir" ] || install -d -m 0755 "$moddir"
for f in "${files[@]}"; do install -m 0644 "$here/$f" "$moddir/$f"; done
install -m 0644 "$tmp/$shared.so" "$moddir/$shared.so"
echo "chibi: (peer) installed in $moddir (stub needs $needed from $libdir)"
