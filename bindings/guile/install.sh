#!/usr/bin/env bash
# Installs the Guile library (peer); `make install` and `make uninstall` call it:
#   GUILE=guile bash bindings/guile/install.sh SITE CCACHE
#   bash bindings/guile/install.sh --uninstall SITE CCACHE
# The sources go into SITE (SITE/peer.scm, SITE/peer/*.scm) and each module compiled into
# CCACHE (CCACHE/peer.go, CCACHE/peer/*.go), the same layout, so that Guile finds (peer)
# through its load paths (by default (%site-dir) and (%site-ccache-dir); else
# GUILE_LOAD_PATH=SITE GUILE_LOAD_COMPILED_PATH=CCACHE) and loads it compiled: fast, and no
# ";;; compiling" lines. --uninstall removes exactly those files (and the two peer/
# directories once empty).
#
# Compiling a module loads those it uses, and (peer ffi) loads libpeer when it loads: the
# build tree's, from LIBPEER_DIR (default: target/release next to this script), else the
# installed one. Nothing of that library is kept in the compiled files.
set -euo pipefail
umask 022                               # directories 0755, files 0644, whatever the caller's
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fail() { echo "bindings/guile/install.sh: $*" >&2; exit 1; }

uninstall=0
if [ "${1:-}" = --uninstall ]; then uninstall=1; shift; fi
[ $# -eq 2 ] && [ -n "$1" ] && [ -n "$2" ] || fail "usage: install.sh [--uninstall] SITE CCACHE"
site=$1
ccache=$2

# The modules in dependency order (bindings/guile/modules); every peer/*.scm must be listed,
# or it would be neither installed nor compiled.
modules=()
while read -r m; do
    case $m in ''|'#'*) ;; *) modules+=("$m") ;; esac
done <"$here/modules"
for f in "$here"/peer/*.scm; do
    m=peer/$(basename "$f" .scm)
    printf '%s\n' "${modules[@]}" | grep -qx "$m" || fail "$m.scm is not listed in $here/modules"
done
for m in "${modules[@]}"; do
    [ -f "$here/$m.scm" ] || fail "$here/modules lists $m, but $here/$m.scm does not exist"
done

if [ $uninstall = 1 ]; then
    for m in "${modules[@]}"; do rm -f "$site/$m.scm" "$ccache/$m.go"; done
    for d in "$site/peer" "$ccache/peer"; do
        if [ -d "$d" ]; then rmdir --ignore-fail-on-non-empty "$d"; fi
    done
    exit 0
fi

GUILE=${GUILE:-guile}
command -v "$GUILE" >/dev/null || fail "no Guile ($GUILE); set GUILE"
LIBPEER_DIR=${LIBPEER_DIR:-$root/target/release}
if [ -f "$LIBPEER_DIR/libpeer.so" ]; then export LIBPEER_DIR; else unset LIBPEER_DIR; fi

install -d -m 0755 "$site" "$site/peer" "$ccache" "$ccache/peer"
for m in "${modules[@]}"; do install -m 0644 "$here/$m.scm" "$site/$m.scm"; done

# Each module in its own Guile, after those it uses, from the installed sources (so each .go
# is newer than its source and names it relative to SITE): in one process a module compiles
# against half-made ones (their macros, none of their definitions), and at run time its code
# misses their private bindings ("Unbound variable: take-scratch!").
log=$(mktemp "${TMPDIR:-/tmp}/peer-guile-install.XXXXXX")
trap 'rm -f "$log"' EXIT
for m in "${modules[@]}"; do
    rm -f "$ccache/$m.go"
    "$GUILE" --no-auto-compile -L "$site" -C "$ccache" -c '
      (use-modules (system base compile))
      (compile-file (cadr (command-line)) #:output-file (caddr (command-line)))' \
        "$site/$m.scm" "$ccache/$m.go" >"$log" 2>&1 \
        || { cat "$log" >&2; fail "compiling $m.scm failed (LIBPEER_DIR=${LIBPEER_DIR:-unset})"; }
    # A warning means the compiled module may misbehave at run time: stop here.
    if grep -q 'warning' "$log"; then cat "$log" >&2; fail "compiling $m.scm gave warnings"; fi
    [ -f "$ccache/$m.go" ] || fail "compiling $m.scm produced no $ccache/$m.go"
    chmod 0644 "$ccache/$m.go"
done
echo "guile: (peer) installed in $site, compiled in $ccache"
