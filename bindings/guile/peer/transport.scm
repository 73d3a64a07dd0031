;;; (peer transport): moving the messages of peers on the program's transport.
;;;
;;; - The pump: for one peer, up to 64 envelopes from libpeer to the program's `send`, then
;;;   up to 64 from its `recv` to libpeer. Every pump takes one lock (`pump-mutex`, which
;;;   closing an external peer takes too), so the program's `recv`/`send` never run on two
;;;   threads at once (its queues need no locks), nor after `peer-close` returns.
;;; - `thread` mode: one library thread pumps every live such peer, so they answer while the
;;;   program is idle. It starts with the first such peer and ends when none is left.
;;;   What their `recv`/`send` raise there goes to the calls waiting on that peer, raised at
;;;   once, else to the peer's `on-error`.
;;; - `poll` mode: the program pumps with `peer-poll`, and every blocking call pumps all such
;;;   peers while it waits; what `recv`/`send` raise then propagates out of that call.
;;; - Blocking calls: on a `thread`-mode peer, or while `poll`-mode peers exist, the C call
;;;   runs on a pooled thread (see (peer worker)) so that the caller can pump, or leave.

(define-module (peer transport)
  #:use-module (system foreign)
  #:use-module (rnrs bytevectors)
  #:use-module (ice-9 atomic)
  #:use-module (ice-9 threads)
  #:use-module (ice-9 exceptions)
  #:use-module (peer ffi)
  #:use-module (peer errors)
  #:use-module (peer handles)
  #:use-module (peer envelope)
  #:use-module (peer worker)
  #:export (register-external! blocking peer-poll))

;;; ---------------------------------------------------------------------------------------
;;; The pump

;; Messages moved per peer and direction per round, so one busy peer cannot starve others.
(define pump-batch 64)

;; peer_ext_pop's out-parameters; read into fresh values before any `send` runs, so a
;; nested pump (from within `send`) may reuse them.
(define pop-ip (make-bytevector ip-buf-len 0))
(define pop-port (make-bytevector 2 0))
(define pop-env (make-bytevector ptr-size 0))
(define pop-len (make-bytevector size-t-size 0))
(define pop-ip* (bytevector->pointer pop-ip))
(define pop-port* (bytevector->pointer pop-port))
(define pop-env* (bytevector->pointer pop-env))
(define pop-len* (bytevector->pointer pop-len))

;; What `invoke` returns when the program's procedure raised and the library thread took it.
(define raised (list 'raised))

;; Pump peer `p` once, holding the pump lock (see (peer handles)); the number of envelopes
;; moved, dropped junk included, 0 when `p` is closed. `invoke` calls the program's
;; procedures: (invoke p 'send thunk) or (invoke p 'recv thunk).
(define (pump! p invoke)
  (let ((ptr (atomic-box-ref (peer-box p))))
    (if ptr
        (+ (pump-out! p ptr invoke) (pump-in! p ptr invoke))
        0)))

(define (pump-out! p ptr invoke)
  (let loop ((i 0))
    (if (= i pump-batch)
        i
        (if (zero? (%ext-pop ptr 0 pop-ip* pop-port* pop-env* pop-len*))
            (let* ((ip (c-ip-string pop-ip))
                   (port (bytevector-u16-native-ref pop-port 0))
                   (envelope (text->envelope (take-bytes! (read-pointer pop-env) (read-size pop-len)))))
              ;; A send that raised lost its message; the rest wait for the next round.
              (if (eq? (invoke p 'send (lambda () ((peer-send p) ip port envelope))) raised)
                  (+ i 1)
                  (loop (+ i 1))))
            i))))                       ; 1: nothing waiting; <0: closed meanwhile

;; Junk (wrong types, too big, malformed for libpeer) is dropped silently, like a corrupt
;; frame on a network.
(define (pump-in! p ptr invoke)
  (let loop ((i 0))
    (if (= i pump-batch)
        i
        (let ((x (invoke p 'recv (peer-recv p))))
          (if (or (not x) (eof-object? x) (eq? x raised))
              i
              (let* ((bytes (envelope->bytes x))
                     (rc (if bytes (%ext-push ptr (bytevector->pointer bytes) (bytevector-length bytes)) 0)))
                (if (= rc status-closed) (+ i 1) (loop (+ i 1)))))))))

;; On the program's own threads what the program raises simply propagates.
(define (invoke-here p direction thunk) (thunk))

;; Run `body` holding the pump lock, which this thread has just taken.
(define-syntax-rule (holding-pump-lock body ...)
  (dynamic-wind (lambda () #f) (lambda () body ...) (lambda () (unlock-mutex pump-mutex))))

;; One pass over every live `poll`-mode peer, unless another thread is pumping right now.
(define (pump-poll-peers!)
  (if (try-mutex pump-mutex)
      (holding-pump-lock
        (let loop ((ps (live-peers 'poll)) (moved 0))
          (if (null? ps)
              moved
              (loop (cdr ps) (+ moved (pump! (car ps) invoke-here))))))
      0))

;; Move what is waiting for external peer `p` now, both ways; the number moved.
(define (peer-poll p)
  (external-handle 'peer-poll p)
  (with-mutex pump-mutex (pump! p invoke-here)))

;;; ---------------------------------------------------------------------------------------
;;; The library thread

(define min-backoff-us 50)
(define max-backoff-us 5000)

(define serve-mutex (make-mutex))
(define serve-cv (make-condition-variable))
(define serving? #f)                    ; under serve-mutex
(define kicked (make-atomic-box #f))    ; a blocking call started since the last rest

(define (deadline us)
  (let* ((now (gettimeofday))
         (usecs (+ (cdr now) us)))
    (cons (+ (car now) (quotient usecs 1000000)) (remainder usecs 1000000))))

;; A one-line account of a raised object for the error port.
(define (show x)
  (if (exception? x)
      (string-map (lambda (c) (if (char=? c #\newline) #\space c))
                  (string-trim-right
                   (call-with-output-string
                     (lambda (port) (print-exception port #f (exception-kind x) (exception-args x))))))
      (format #f "~s" x)))

;; `on-error`'s default, and where an exception of `on-error` itself goes.
(define (complain direction x)
  (let ((port (current-error-port)))
    (format port "peer: ~a raised: ~a~%" direction (show x))
    (force-output port)))

;; What `p`'s procedure raised on the library thread: to the calls waiting on `p`, else to
;; its `on-error`.
(define (report! p direction e)
  (let ((calls (with-mutex registry-mutex (peer-calls p))))
    (if (pair? calls)
        (for-each (lambda (call) (call-fail! call e)) calls)
        (let ((on-error (peer-on-error p)))
          (if on-error
              (with-exception-handler
                  (lambda (e2) (complain "on-error" e2))
                (lambda () (on-error e))
                #:unwind? #t)
              (complain direction e))))))

(define (invoke-guarded p direction thunk)
  (with-exception-handler
      (lambda (e) (report! p direction e) raised)
    thunk
    #:unwind? #t))

;; One pass over the live `thread`-mode peers: how many envelopes moved, #f when none is left.
(define (serve-round)
  (let ((peers (live-peers 'thread)))
    (and (pair? peers)
         (let loop ((ps peers) (moved 0))
           (if (null? ps)
               moved
               (loop (cdr ps) (+ moved (with-mutex pump-mutex (pump! (car ps) invoke-guarded)))))))))

;; Sleep up to `us` unless a blocking call starts; whether one did.
(define (rest! us)
  (with-mutex serve-mutex
    (or (atomic-box-swap! kicked #f)
        (begin (wait-condition-variable serve-cv serve-mutex (deadline us))
               (atomic-box-swap! kicked #f)))))

;; Ends when no `thread`-mode peer is left; `start-serving!` decides under the same mutex.
(define (finished?)
  (with-mutex serve-mutex
    (and (null? (live-peers 'thread))
         (begin (set! serving? #f) #t))))

(define (serve)
  (let loop ((backoff min-backoff-us))
    (let ((moved (with-exception-handler
                     (lambda (e) (complain "the library thread" e) 0)
                   serve-round
                   #:unwind? #t)))
      (cond ((not moved) (unless (finished?) (loop min-backoff-us)))
            ((> moved 0) (loop min-backoff-us))
            ((rest! backoff) (loop min-backoff-us))
            (else (loop (min max-backoff-us (* 2 backoff))))))))

(define (start-serving!)
  (with-mutex serve-mutex
    (unless serving?
      (set! serving? #t)
      (call-with-new-thread serve))))

;; Reset the library thread's back-off: a call is waiting for its messages.
(define (kick!)
  (atomic-box-set! kicked #t)
  (with-mutex serve-mutex (signal-condition-variable serve-cv)))

;; A new external peer: guarded, listed, and served when its mode is `thread`.
(define (register-external! p)
  (register! p)
  (when (eq? (peer-mode p) 'thread) (start-serving!))
  p)

;;; ---------------------------------------------------------------------------------------
;;; Blocking calls

;; Poll for a waiting call: #f when there is nothing to poll.
(define (poll-for-call)
  (and (positive? (poll-count)) (pump-poll-peers!)))

(define (add-call! p call)
  (with-mutex registry-mutex (set-peer-calls! p (cons call (peer-calls p)))))

(define (remove-call! p call)
  (with-mutex registry-mutex (set-peer-calls! p (delq call (peer-calls p)))))

;; Run `thunk` (a C call on `p` returning an outcome). Straight on this thread when nothing
;; needs pumping here and nothing can fail it early; else on a worker while this thread
;; pumps the `poll`-mode peers and listens for failures of `p`'s `recv`/`send`. `p` is used
;; after the call so that the collector cannot close it meanwhile.
(define (blocking p thunk)
  (let ((result
         (if (or (eq? (peer-mode p) 'thread) (positive? (poll-count)))
             (let ((call (make-call))
                   (watch? (eq? (peer-mode p) 'thread)))
               (dynamic-wind
                 (lambda () (when watch? (add-call! p call) (kick!)))
                 (lambda () (call-while-polling call thunk poll-for-call))
                 (lambda () (when watch? (remove-call! p call)))))
             (thunk))))
    (keep-alive p)
    result))

;; A call the compiler cannot see through (the variable is assigned, so never inlined):
;; whatever is passed to it stays reachable until the call.
(define keep-alive #f)
(set! keep-alive (lambda (x) x))
