#!/usr/bin/env bash
# make check-install: `make install` into a temporary prefix, then use what it installed the
# way a program would, with no path into the build tree: the library's soname, symlinks,
# stripping and separate debug info; a C program built with pkg-config; the `peer`
# command; one program per Scheme (scheme-tests/installed/), each told only the prefix's
# directories (in the environment variables its implementation reads), never LIBPEER_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/peer-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
lib=$prefix/lib
version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' "$root/Cargo.toml")
major=${version%%.*}
fail() { echo "check-install: FAILED: $*" >&2; exit 1; }

guile_site=$prefix/share/guile/site/3.0
guile_ccache=$prefix/lib/guile/3.0/site-ccache
chez_libdir=$prefix/lib/chez
chibi_moddir=$prefix/share/chibi
make -C "$root" --no-print-directory install PREFIX="$prefix" GUILE_SITE="$guile_site" \
    GUILE_CCACHE="$guile_ccache" CHEZ_LIBDIR="$chez_libdir" CHIBI_MODDIR="$chibi_moddir" >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log" >&2; fail "make install"; }

# The library: soname, the two symlinks, stripped, its debug info apart and linked.
real=$lib/libpeer.so.$version
test -f "$real" || fail "$real is missing"
soname=$(readelf -d "$real" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libpeer.so.$major" ] || fail "soname is '$soname', not libpeer.so.$major"
[ "$(readlink "$lib/libpeer.so.$major")" = "libpeer.so.$version" ] || fail "libpeer.so.$major does not point to libpeer.so.$version"
[ "$(readlink "$lib/libpeer.so")" = "libpeer.so.$major" ] || fail "libpeer.so does not point to libpeer.so.$major"
readelf -S "$real" | grep -q '\.debug_info' && fail "the installed library is not stripped"
readelf -S "$lib/.debug/libpeer.so.$version.debug" | grep -q '\.debug_info' || fail "the separate debug info has no .debug_info"
readelf -x .gnu_debuglink "$real" | grep -q "libpeer" || fail "the library does not name its debug file"
printf 'library: %s bytes installed (build tree: %s bytes with debug info), soname %s\n' \
    "$(stat -c %s "$real")" "$(stat -c %s "$root/target/release/libpeer.so")" "$soname"

# A C program that knows only pkg-config.
export PKG_CONFIG_PATH=$lib/pkgconfig
flags=$(pkg-config --cflags --libs peer) || fail "pkg-config --cflags --libs peer"
cc -std=c99 -Wall -Werror -o "$tmp/installed" "$root/c-tests/installed.c" $flags || fail "building the C program with: $flags"
readelf -d "$tmp/installed" | grep -q "NEEDED.*\[libpeer.so.$major\]" || fail "the C program does not need libpeer.so.$major"
LD_LIBRARY_PATH=$lib "$tmp/installed" | grep -qx "installed c ok" || fail "the C program"
echo "c: built with '$flags', ran"

# The command.
"$prefix/bin/peer" --version | grep -qx "peer $version" || fail "peer --version"
"$prefix/bin/peer" ns keygen --json | grep -q '"public"' || fail "peer ns keygen"
readelf -S "$prefix/bin/peer" | grep -q '\.debug_info' && fail "the installed peer command is not stripped"
echo "peer: $("$prefix/bin/peer" --version)"

# The Schemes: the build tree's paths must not leak in.
unset LIBPEER_DIR GUILE_LOAD_PATH GUILE_LOAD_COMPILED_PATH CHEZSCHEMELIBDIRS CHIBI_MODULE_PATH
cd "$tmp"
out=$(LD_LIBRARY_PATH=$lib GUILE_LOAD_PATH=$guile_site GUILE_LOAD_COMPILED_PATH=$guile_ccache \
      GUILE_AUTO_COMPILE=0 ${GUILE:-guile} "$root/scheme-tests/installed/guile.scm" 2>&1) || { echo "$out" >&2; fail "the Guile program"; }
echo "$out" | grep -qx "installed guile ok" || { echo "$out" >&2; fail "the Guile program's output"; }
out=$(LD_LIBRARY_PATH=$lib CHEZSCHEMELIBDIRS=$chez_libdir ${CHEZ:-scheme} --script "$root/scheme-tests/installed/chez.ss" 2>&1) \
    || { echo "$out" >&2; fail "the Chez program"; }
echo "$out" | grep -qx "installed chez ok" || { echo "$out" >&2; fail "the Chez program's output"; }
chibi=${CHIBI:-$root/.deps/chibi/bin/chibi}
out=$(CHIBI_MODULE_PATH=$chibi_moddir CHIBI_LIBRARY_PATH=$lib "$chibi" "$root/scheme-tests/installed/chibi.scm" 2>&1) \
    || { echo "$out" >&2; fail "the Chibi program"; }
echo "$out" | grep -qx "installed chibi ok" || { echo "$out" >&2; fail "the Chibi program's output"; }
echo "scheme: guile, chez and chibi programs ran from the prefix"
echo "check-install: passed"
