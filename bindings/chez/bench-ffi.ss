;; FFI overhead of the Chez binding, in ns per call.
;;   LIBPEER_DIR=target/release scheme --libdirs bindings/chez --script bindings/chez/bench-ffi.ss
;; Raw foreign calls (plain and __collect_safe) set the floor; peer-port adds the wrapper's
;; checks and the guardian drain; peer-ref adds locked buffers, libpeer's lookup and a copy;
;; the last line is peer-ref while an external peer of serve mode `poll` is alive, so each
;; call runs on a worker thread while the caller pumps.
(import (chezscheme) (peer))

(define (bench name n thunk)
  (thunk)                                    ; warm up
  (collect-rendezvous)                       ; start each timing after a collection
  (let ([t0 (current-time 'time-monotonic)])
    (do ([i 0 (fx+ i 1)]) ((fx= i n)) (thunk))
    (let* ([d (time-difference (current-time 'time-monotonic) t0)]
           [ns (+ (* (time-second d) 1000000000) (time-nanosecond d))])
      (printf "~a: ~,1f ns/call (~a calls)\n" name (/ ns (inexact n)) n))))

(define a (peer-open (peer-random-uid) "127.0.0.1" 0))
(define b (peer-open (peer-random-uid) "127.0.0.1" 0))
(unless (peer-connect a "127.0.0.1" (peer-port b)) (error 'bench "peers could not connect"))
(define value (string->utf8 "a stored value for the FFI benchmark"))
(define key (peer-set a value))
(unless (equal? (peer-ref a key) value) (error 'bench "peer-ref did not return the value"))

;; libpeer.so is loaded by now (the library ran), so its symbols can be named directly.
(define raw-max (foreign-procedure "peer_max_value_size" () size_t))
(define raw-max-safe (foreign-procedure __collect_safe "peer_max_value_size" () size_t))

(bench "raw foreign call" 1000000 raw-max)
(bench "raw __collect_safe foreign call" 1000000 raw-max-safe)
(bench "peer-port" 1000000 (lambda () (peer-port a)))
(bench "peer-ref of a stored value" 20000 (lambda () (peer-ref a key)))

;; The same lookup without the wrapper: a peer made through the raw C calls, buffers
;; allocated once and locked for good. The difference to the line above is the binding's cost.
(define raw-new (foreign-procedure "peer_new" (u8* string unsigned-16 unsigned-32 u8*) int))
(define raw-set (foreign-procedure "peer_set" (uptr u8* size_t u8*) int))
(define raw-ref (foreign-procedure __collect_safe "peer_ref" (uptr u8* u8* u8*) int))
(define raw-free-bytes (foreign-procedure "peer_bytes_free" (uptr size_t) void))
(define raw-free (foreign-procedure "peer_free" (uptr) void))
(define out (make-bytevector 8 0))
(unless (zero? (raw-new (peer-random-uid) "127.0.0.1" 0 5 out)) (error 'bench "peer_new failed"))
(define raw (bytevector-u64-native-ref out 0))
(define raw-key (make-bytevector 32 0))
(unless (zero? (raw-set raw value (bytevector-length value) raw-key)) (error 'bench "peer_set failed"))
(define addr (make-bytevector 8 0))
(define len (make-bytevector 8 0))
(for-each lock-object (list raw-key addr len))
(bench "raw peer_ref + peer_bytes_free" 20000
  (lambda ()
    (raw-ref raw raw-key addr len)
    (raw-free-bytes (bytevector-u64-native-ref addr 0) (bytevector-u64-native-ref len 0))))
(raw-free raw)

(define ext (peer (peer-random-uid) (lambda () #f) (lambda (ip port envelope) #f) 5
              '((serve . poll))))
(bench "peer-ref with a poll-mode external peer alive" 2000 (lambda () (peer-ref a key)))

(for-each peer-close (list ext a b))
