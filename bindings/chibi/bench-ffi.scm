;; FFI overhead of the Chibi library: a direct call (peer-port), and a blocking call that
;; runs on a worker thread while the caller waits (peer-ref of a value the peer holds itself).
;; Run: .deps/chibi/bin/chibi -I bindings/chibi -I build/chibi bindings/chibi/bench-ffi.scm
(import (scheme base) (scheme write) (scheme time) (peer))

(define (ns-per-call n thunk)
  (let ((t0 (current-jiffy)))
    (do ((i 0 (+ i 1))) ((= i n)) (thunk))
    (/ (* 1e9 (- (current-jiffy) t0)) (jiffies-per-second) n)))

(define (report what n ns)
  (display what) (display ": ") (display n) (display " calls, ")
  (display (exact (round ns))) (display " ns/call") (newline))

(define p (peer-open (peer-random-uid) "127.0.0.1" 0))
(define key (peer-set p (string->utf8 "bench value")))

(report "peer-port (direct call)" 100000 (ns-per-call 100000 (lambda () (peer-port p))))
(report "peer-random-uid (direct call, fresh bytevector)" 100000
        (ns-per-call 100000 (lambda () (peer-random-uid))))
(report "peer-ref, value held locally (worker thread + wait)" 2000
        (ns-per-call 2000 (lambda () (unless (peer-ref p key) (error "bench: value lost")))))
(peer-close p)
