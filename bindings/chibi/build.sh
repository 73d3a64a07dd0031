#!/usr/bin/env bash
# Build the Chibi library's shared object: peer.stub -> (chibi-ffi) peer.c, compiled with
# peer-glue.c, peer-jobs.c, peer-envelope.c and peer-process.c into OUT/peer.so, linked to libpeer with
# an rpath (Chibi is launched through its own ld-linux, which ignores LD_LIBRARY_PATH).
#
# The stub needs libpeer by its soname (libpeer.so.0), which the build tree only has as
# libpeer.so: for the build tree, OUT/libpeer.so.0 links to LIBPEER_DIR/libpeer.so and the
# rpath is OUT (then LIBPEER_DIR). install.sh sets PEER_RPATH to the installed libpeer's
# directory instead: then the rpath is that alone and no link is made.
#
# Use it with both directories on Chibi's module path:
#   .deps/chibi/bin/chibi -I bindings/chibi -I build/chibi prog.scm
#
# Env: CHIBI_PREFIX (default .deps/chibi), LIBPEER_DIR (default target/release),
#      PEER_INCLUDE (directory of peer.h, default include), CHIBI_OUT (default build/chibi),
#      PEER_RPATH (see above), CC (default gcc). Rebuilds only when an input changed or
#      LIBPEER_DIR or PEER_RPATH moved.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/bindings/chibi
abspath() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
prefix=$(abspath "${CHIBI_PREFIX:-.deps/chibi}")
libdir=$(abspath "${LIBPEER_DIR:-target/release}")
incdir=$(abspath "${PEER_INCLUDE:-include}")
out=$(abspath "${CHIBI_OUT:-build/chibi}")
cc=${CC:-gcc}

die() { echo "chibi build: error: $*" >&2; exit 1; }

[[ -x $prefix/bin/chibi-ffi ]] || die "no Chibi in $prefix: run scripts/install-chibi.sh first"
[[ -f $incdir/peer.h ]] || die "$incdir/peer.h not found (the C header of libpeer)"
[[ -f $libdir/libpeer.so ]] || die "$libdir/libpeer.so not found: run 'cargo build --release' (or set LIBPEER_DIR)"

so=$out/peer.so
stamp=$out/peer.so.libdir
# What the stamp records: a change of either means a relink.
where="$libdir ${PEER_RPATH:-}"
inputs=("$src/peer.stub" "$src/peer-glue.h" "$src/peer-glue.c" "$src/peer-jobs.c" "$src/peer-envelope.c"
        "$src/peer-process.c"
        "$incdir/peer.h" "$src/build.sh")
if [[ -f $so && -f $stamp && $(cat "$stamp") == "$where" ]]; then
    fresh=1
    for f in "${inputs[@]}"; do [[ $f -nt $so ]] && fresh=0; done
    ((fresh)) && exit 0
fi

mkdir -p "$out"
# chibi-ffi resolves c-include relative to the stub, so generate from a copy in OUT.
cp "$src/peer.stub" "$out/peer.stub"
"$prefix/bin/chibi-ffi" "$out/peer.stub" "$out/peer.c" || die "chibi-ffi failed on peer.stub"
cflags=(-O2 -fPIC -I "$prefix/usr/include" -I "$incdir")
# The generated file trips -Wextra inside Chibi's own macros; the hand-written ones must not.
"$cc" "${cflags[@]}" -Wall -c -o "$out/peer.o" "$out/peer.c" || die "compiling peer.c failed"
for c in peer-glue peer-jobs peer-envelope peer-process; do
    "$cc" "${cflags[@]}" -Wall -Wextra -Werror -Wno-unused-parameter -c -o "$out/$c.o" \
        "$src/$c.c" || die "compiling $c.c failed"
done
if [[ -n ${PEER_RPATH:-} ]]; then
    rpath=$PEER_RPATH
else
    soname=$(readelf -d "$libdir/libpeer.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
    if [[ -n $soname && $soname != libpeer.so ]]; then
        ln -sfn "$libdir/libpeer.so" "$out/$soname" || die "cannot link $out/$soname"
    fi
    rpath=$out:$libdir
fi
"$cc" -shared -o "$so.tmp" "$out/peer.o" "$out/peer-glue.o" "$out/peer-jobs.o" \
    "$out/peer-envelope.o" "$out/peer-process.o" \
    -L "$libdir" -lpeer -Wl,-rpath,"$rpath" -lpthread || die "linking peer.so failed"
mv "$so.tmp" "$so"
echo "$where" >"$stamp"
echo "chibi build: $so (linked against $libdir/libpeer.so, rpath $rpath)"
