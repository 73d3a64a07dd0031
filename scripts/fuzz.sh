#!/usr/bin/env bash
# Build and run the fuzz targets (docs/FUZZING.md) with libFuzzer on stable Rust: the crate
# fuzz/ is built with plain cargo and the coverage flags cargo-fuzz passes for
# `--sanitizer none`, into target/fuzz (so they never invalidate the main build).
#
#   scripts/fuzz.sh build               build every target
#   scripts/fuzz.sh check [SECONDS]     build, then run each target SECONDS (default 8) from
#                                       its seeds; fails on the first crash
#   scripts/fuzz.sh run SECONDS [T...]  build, then run each target (or those named) SECONDS,
#                                       growing build/fuzz/corpus/T; prints executions
#
# Inputs a run finds are kept in build/fuzz/corpus/<target> (seeds: fuzz/corpus/<target>,
# read only); a crash is written to build/fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail

cd "$(dirname "$0")/.."

TARGETS=(datum frame request reply accept transport)
HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN=target/fuzz/$HOST/release
OUT=build/fuzz

# cargo-fuzz's flags for `--sanitizer none`: edge coverage as inline 8-bit counters with a PC
# table, comparisons traced (libFuzzer learns the symbols and numbers the decoder compares
# against), stack depth, `cfg(fuzzing)`, and debug assertions and overflow checks in
# release. `--target` keeps the flags off build scripts and proc macros, which are not
# linked with libFuzzer.
RUSTFLAGS_FUZZ="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"

build() {
    echo "== fuzz: building the targets (target/fuzz)"
    local start=$SECONDS
    # The library's build script would rewrite include/peer.h; the main build owns it.
    RUSTFLAGS="$RUSTFLAGS_FUZZ" PEER_HEADER_NO_WRITE=1 \
        cargo build --release --manifest-path fuzz/Cargo.toml --target "$HOST" --target-dir target/fuzz --bins
    echo "fuzz: built in $((SECONDS - start)) s"
}

# run TARGET SECONDS: one libFuzzer run from the target's seeds and its grown corpus.
run() {
    local t=$1 secs=$2
    mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
    local dict=()
    [[ $t == accept || $t == frame ]] || dict=(-dict=fuzz/wire.dict)
    local log="$OUT/$t.log"
    # -timeout: one input taking 60 s is a finding (a hang; inputs take microseconds, but
    # the limit is wall-clock and a niced run on a busy machine waits); so is 2 GiB.
    if ! "$BIN/$t" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$OUT/artifacts/$t/" "$OUT/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz: FAILED: $t crashed; the input is in $OUT/artifacts/$t/ (log: $log)" >&2
        return 1
    fi
    local runs rate
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$((runs / (secs > 0 ? secs : 1)))
    printf 'fuzz: %-9s %12d executions in %5d s (%d/s), corpus %d, no crash\n' \
        "$t" "$runs" "$secs" "$rate" "$(find "$OUT/corpus/$t" -type f | wc -l)"
}

case ${1:-} in
    build)
        build
        ;;
    check)
        secs=${2:-8}
        build
        echo "== fuzz-check: each target for $secs s"
        for t in "${TARGETS[@]}"; do run "$t" "$secs"; done
        ;;
    run)
        secs=${2:?seconds per target}
        shift 2
        (($#)) && TARGETS=("$@")
        build
        # A long run goes on past a crash, to the other targets, and fails at the end.
        failed=()
        for t in "${TARGETS[@]}"; do run "$t" "$secs" || failed+=("$t"); done
        if ((${#failed[@]})); then
            echo "fuzz: FAILED: ${failed[*]}" >&2
            exit 1
        fi
        ;;
    *)
        sed -n '2,13s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
esac
