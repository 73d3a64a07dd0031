;;; FFI call overhead of the Guile binding, in ns per call.
;;;
;;;   LIBPEER_DIR=target/release guile -L bindings/guile bindings/guile/bench-ffi.scm [N]
;;;
;;; Run it compiled (Guile's default auto-compilation), else the interpreter's loop
;;; dominates. N (default 1000000) is the count for the cheap calls; network-free but
;;; blocking calls (peer-ref of a value the peer holds) run N/10 times.

(use-modules (peer)
             (rnrs bytevectors)
             (ice-9 format))

(define n (if (> (length (command-line)) 1) (string->number (cadr (command-line))) 1000000))

(define (now) (get-internal-real-time))

(define (ns-per-call count thunk)
  (let ((start (now)))
    (let loop ((i 0))
      (when (< i count) (thunk) (loop (+ i 1))))
    (/ (* 1e9 (- (now) start)) internal-time-units-per-second count)))

(define (report name count thunk)
  (format #t "~30a ~9d calls ~10,1f ns/call~%" name count (ns-per-call count thunk)))

(define a (peer-open (peer-random-uid) "127.0.0.1" 0))
(define b (peer-open (peer-random-uid) "127.0.0.1" 0))
(unless (peer-connect b "127.0.0.1" (peer-port a))
  (error "bench: could not connect the two peers"))
(define value (string->utf8 "a value both peers hold"))
(define key (peer-set a value))
(unless (equal? (peer-ref a key) value) (error "bench: peer-ref did not return the value"))

;; The raw foreign procedure, without the binding's checks: the floor of a call.
(define raw-port (@@ (peer) %port))
(define raw-handle ((@@ (peer) handle) 'bench a))

(report "empty loop" n (lambda () #f))
(report "raw peer_port" n (lambda () (raw-port raw-handle)))
(report "peer-port" n (lambda () (peer-port a)))
(report "peer-uid (32-byte out)" n (lambda () (peer-uid a)))
(report "peer-random-uid" n (lambda () (peer-random-uid)))
(report "peer-ref of a local value" (quotient n 10) (lambda () (peer-ref a key)))
(report "peer-ref of a missing key" (quotient n 100) (lambda () (peer-ref a (peer-random-uid))))

;; A `thread`-mode external peer alive changes nothing for a TCP peer's calls; a `poll`-mode
;; one makes every blocking call run on a pooled thread while the caller pumps.
(define ext (peer (peer-random-uid) (lambda () #f) (lambda (ip port envelope) #f) 5))
(report "peer-ref, thread peer alive" (quotient n 100) (lambda () (peer-ref a key)))
(peer-close ext)
(define ext-poll (peer (peer-random-uid) (lambda () #f) (lambda (ip port envelope) #f) 5
                       '((serve . poll))))
(report "peer-ref, poll peer alive" (quotient n 100) (lambda () (peer-ref a key)))
(peer-close ext-poll)

(peer-close a)
(peer-close b)
