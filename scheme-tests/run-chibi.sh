#!/usr/bin/env bash
# Runs the portable suite (scheme-tests/suite.scm) under Chibi Scheme with the (peer) library
# of bindings/chibi. Env: CHIBI (default: the wrapper scripts/install-chibi.sh installs in
# .deps/chibi, installed on first use), LIBPEER_DIR (directory of libpeer.so, default
# target/release). Exit 0 only if the suite's final line reports 0 failures.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
LIBPEER_DIR=${LIBPEER_DIR:-target/release}
case $LIBPEER_DIR in /*) ;; *) LIBPEER_DIR=$root/$LIBPEER_DIR ;; esac
export LIBPEER_DIR

if [ ! -f "$LIBPEER_DIR/libpeer.so" ]; then
    echo "run-chibi: $LIBPEER_DIR/libpeer.so not found (build with cargo build --release)" >&2
    exit 1
fi

if [ -z "${CHIBI:-}" ]; then
    bash "$root/scripts/install-chibi.sh" || { echo "run-chibi: installing Chibi failed" >&2; exit 1; }
    CHIBI=$root/.deps/chibi/bin/chibi
fi
# The stub's .so has an rpath to libpeer; the wrapper also puts it on the loader's path.
export CHIBI_LIBRARY_PATH=$LIBPEER_DIR

LIBPEER_DIR=$LIBPEER_DIR bash "$root/bindings/chibi/build.sh" \
    || { echo "run-chibi: building the Chibi stub failed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/peer-chibi.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/out.log
# Data directories the suite makes (the prelude's temp-path): removed with $work.
export PEER_TEST_DIR=$work/data
mkdir -p "$PEER_TEST_DIR"

# The prelude: the library and the helpers suite.scm expects (see its head), then the suite.
cat >"$work/main.scm" <<EOF
(import (scheme base) (scheme char) (scheme cxr) (scheme read) (scheme write)
        (scheme process-context) (only (srfi 18) thread-sleep!) (peer))

(define (bytevector-from-list lst) (apply bytevector lst))
(define (bv-copy bv) (bytevector-copy bv))
(define (string->utf8* s) (string->utf8 s))
(define (exit-with-failures n) (exit (if (zero? n) 0 1)))
(define (temp-path name)
  (let ((dir (get-environment-variable "PEER_TEST_DIR")))
    (unless dir (error "PEER_TEST_DIR is not set (run the suite with run-chibi.sh)"))
    (string-append dir "/" name)))
(define (sleep-ms ms) (thread-sleep! (/ ms 1000.)))

(define (write-to-string datum)
  (let ((port (open-output-string)))
    (write datum port)
    (get-output-string port)))

;; Chibi reads R7RS #u8(...), which libpeer writes.
(define (read-wire text) (read (open-input-string text)))

(define (error-text e)
  (if (error-object? e)
      (let ((port (open-output-string)))
        (display (error-object-message e) port)
        (for-each (lambda (x) (display " " port) (write x port)) (error-object-irritants e))
        (get-output-string port))
      (write-to-string e)))

(include "$here/suite.scm")
EOF

# Bounded: the suite's slowest wait is a few request timeouts.
timeout 900 "$CHIBI" -I "$root/bindings/chibi" -I "$root/build/chibi" "$work/main.scm" 2>&1 \
    | tee "$out"
status=${PIPESTATUS[0]}

. "$here/verdict.sh"
verdict run-chibi "$out" "$status"
