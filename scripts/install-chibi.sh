#!/usr/bin/env bash
# Install Chibi Scheme 0.12 into a private prefix (default .deps/chibi, git-ignored).
#
# Chibi is packaged in Debian sid only, built against a newer glibc than Debian 12's. So we
# neither add sid to the system's apt sources nor install anything system-wide: a private apt
# configuration (its own sources file, lists and cache) downloads the .debs, `dpkg -x` unpacks
# them into the prefix together with sid's libc6, and a wrapper script runs chibi-scheme
# through that libc's own dynamic loader. The mirror's URI is copied at run time from the
# system's sources so that no host name is written into the project.
#
# Usage: scripts/install-chibi.sh [--force]     (env CHIBI_PREFIX overrides the prefix)
# Idempotent: when the prefix is complete it only checks and exits, with no apt call.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${CHIBI_PREFIX:-$root/.deps/chibi}
stamp=$prefix/.installed
packages=(chibi-scheme libchibi-scheme0 libchibi-scheme-dev libchibi-scheme-ffi
          chibi-scheme-common libc6)
system_sources=/etc/apt/sources.list.d/debian.sources

die() { echo "install-chibi: error: $*" >&2; exit 1; }

# A complete prefix has the stamp (written last) and runs a trivial expression.
if [[ ${1:-} != --force && -f $stamp && -x $prefix/bin/chibi ]]; then
    if [[ $("$prefix/bin/chibi" -q -p '(+ 1 2)' 2>/dev/null) == 3 ]]; then
        exit 0
    fi
    echo "install-chibi: $prefix is present but does not run; reinstalling" >&2
fi

command -v apt-get >/dev/null || die "apt-get not found (this script needs Debian)"
command -v dpkg >/dev/null || die "dpkg not found (this script needs Debian)"
triplet=$(gcc -print-multiarch 2>/dev/null || true)
[[ -n $triplet ]] || triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
[[ -n $triplet ]] || die "cannot tell the multiarch triplet (need gcc or dpkg-architecture)"

# The first Debian (non-security) URI of the system's sources.
[[ -r $system_sources ]] || die "$system_sources not readable: cannot find a Debian mirror"
uris=$(grep -E '^[[:space:]]*URIs:' "$system_sources" | grep -v security | head -n1 || true)
[[ -n $uris ]] || die "no non-security 'URIs:' line in $system_sources"
signed_by=$(grep -E '^[[:space:]]*Signed-By:' "$system_sources" | head -n1 || true)
[[ -n $signed_by ]] || signed_by="Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

work=$(mktemp -d "${TMPDIR:-/tmp}/install-chibi.XXXXXX") || die "cannot make a temporary directory"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
cat >"$work/sid.sources" <<EOF
Types: deb
$uris
Suites: sid
Components: main
$signed_by
EOF

apt_opts=(
    -o "Dir::Etc::SourceList=$work/sid.sources"
    -o Dir::Etc::SourceParts=/dev/null
    -o Dir::Etc::Preferences=/dev/null
    -o Dir::Etc::PreferencesParts=/dev/null
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o APT::Sandbox::User=root
    -o Debug::NoLocking=1
)

echo "install-chibi: fetching the package lists of Debian sid (private apt state)"
apt-get "${apt_opts[@]}" -q update >"$work/update.log" 2>&1 || {
    cat "$work/update.log" >&2; die "apt-get update for sid failed"; }
# apt-get update exits 0 even when a source failed to download; check that we got a list.
ls "$work/lists/"*_dists_sid_main_binary-*_Packages* >/dev/null 2>&1 || {
    cat "$work/update.log" >&2; die "apt-get update did not fetch sid's package list"; }

echo "install-chibi: downloading ${packages[*]}"
(cd "$work/debs" && apt-get "${apt_opts[@]}" -q download "${packages[@]}") \
    >"$work/download.log" 2>&1 || {
    cat "$work/download.log" >&2; die "apt-get download failed"; }
for p in "${packages[@]}"; do
    ls "$work/debs/${p}_"*.deb >/dev/null 2>&1 || die "package $p was not downloaded"
done

# Unpack into a fresh directory, then move it into place, so a failure leaves no half prefix.
staging=$work/prefix
mkdir -p "$staging/bin"
for deb in "$work/debs/"*.deb; do
    dpkg -x "$deb" "$staging" || die "dpkg -x $(basename "$deb") failed"
done

libdir=usr/lib/$triplet
loader=$(cd "$staging" && ls "$libdir"/ld-linux*.so.[0-9] 2>/dev/null | head -n1 || true)
[[ -n $loader ]] || die "sid's libc6 has no dynamic loader under $libdir"
[[ -x $staging/usr/bin/chibi-scheme ]] || die "chibi-scheme binary missing from the package"
[[ -f $staging/usr/bin/chibi-ffi ]] || die "chibi-ffi missing from the package"
[[ -f $staging/usr/include/chibi/eval.h ]] || die "chibi headers missing from the package"

# The wrappers find the prefix from their own location, so the prefix can move. Extra
# directories for the dynamic linker (e.g. libpeer's) come from CHIBI_LIBRARY_PATH: launched
# through ld-linux, chibi ignores LD_LIBRARY_PATH.
cat >"$staging/bin/chibi" <<EOF
#!/bin/sh
# Run sid's chibi-scheme through sid's dynamic loader (written by scripts/install-chibi.sh).
p=\$(cd "\$(dirname "\$0")/.." && pwd)
lib="\$p/$libdir"
mp="\$p/usr/share/chibi:\$lib/chibi"
CHIBI_MODULE_PATH="\${CHIBI_MODULE_PATH:+\$CHIBI_MODULE_PATH:}\$mp"
export CHIBI_MODULE_PATH
exec "\$p/$loader" --library-path "\$lib\${CHIBI_LIBRARY_PATH:+:\$CHIBI_LIBRARY_PATH}" \\
    "\$p/usr/bin/chibi-scheme" "\$@"
EOF
cat >"$staging/bin/chibi-ffi" <<'EOF'
#!/bin/sh
# Run chibi-ffi (a Scheme script) with the private chibi.
p=$(cd "$(dirname "$0")/.." && pwd)
exec "$p/bin/chibi" -q "$p/usr/bin/chibi-ffi" "$@"
EOF
chmod +x "$staging/bin/chibi" "$staging/bin/chibi-ffi"

out=$("$staging/bin/chibi" -q -p '(+ 1 2)' 2>&1) || die "the new chibi does not run: $out"
[[ $out == 3 ]] || die "the new chibi printed '$out' for (+ 1 2)"
out=$("$staging/bin/chibi" -q -e '(import (scheme base) (srfi 18)) (display (thread? (current-thread)))' 2>&1) \
    || die "the new chibi cannot import (srfi 18): $out"

rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$staging" "$prefix"
version=$("$prefix/bin/chibi" -V 2>&1 | head -n1 || true)
echo "$version" >"$stamp"
echo "install-chibi: installed ${version:-chibi} into $prefix (run it as $prefix/bin/chibi)"
