#!/usr/bin/env bash
# Prints the directory where Chibi looks for user-installed libraries: the first entry of its
# module path under .../local/share/snow (where snow-chibi installs; /usr/local/share/snow on
# Debian's build), else its first entry. CHIBI: the interpreter (default: the one
# scripts/install-chibi.sh installs in .deps/chibi).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chibi=${CHIBI:-$root/.deps/chibi/bin/chibi}
paths=$("$chibi" -m '(chibi)' -p '(for-each (lambda (d) (display d) (newline)) (current-module-path))')
dir=$(printf '%s\n' "$paths" | grep -m1 '/local/share/snow$' || printf '%s\n' "$paths" | head -n1)
test -n "$dir" || { echo "chibi-module-dir: Chibi reported no module path" >&2; exit 1; }
echo "$dir"
