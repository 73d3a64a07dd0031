#!/usr/bin/env bash
# Install what `make demo` and `make check` need on Debian 12, as root. Idempotent: when
# everything is present it only checks and exits (no apt call), so `make check` can run it
# every time.
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian packages: the two Schemes with packages, the C toolchain for the C tests (g++ checks
# that the header also compiles as C++, and builds libFuzzer for `make fuzz-check`), valgrind.
packages=(guile-3.0 chezscheme valgrind gcc g++ libc6-dev make pkg-config)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "deps: missing Debian packages: ${missing[*]}" >&2
        echo "deps: run 'make deps' (or scripts/deps.sh) as root to install them" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run (a second shell, unattended upgrades) may hold the lock: wait for it.
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
    for p in "${missing[@]}"; do
        installed "$p" || { echo "deps: $p is still not installed" >&2; exit 1; }
    done
fi

# Rust comes from rustup, which cannot be fetched here: only check for it.
if ! command -v cargo >/dev/null 2>&1; then
    if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        echo "deps: cargo is in $HOME/.cargo/bin but not on PATH; add it (the Makefile does)" >&2
    else
        echo "deps: cargo not found: install a Rust toolchain (rustup) first;" >&2
        echo "deps: this script cannot fetch one" >&2
        exit 1
    fi
fi

# Chibi Scheme is not packaged for Debian 12: its own script installs it into a private prefix.
if [[ -f scripts/install-chibi.sh ]]; then
    if ! bash scripts/install-chibi.sh; then
        echo "deps: scripts/install-chibi.sh failed: Chibi Scheme is not installed" >&2
        exit 1
    fi
else
    echo "deps: warning: scripts/install-chibi.sh is missing; 'make check-chibi' will fail" >&2
fi
