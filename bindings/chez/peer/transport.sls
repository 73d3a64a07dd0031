;; (peer transport): moving the envelopes of external peers (the draft's
;; (peer uid recv send replication [options])) and running blocking calls.
;;
;; - Envelopes out: libpeer's canonical text, `#u8(` rewritten to `#vu8(` (Chez 9.5 reads
;;   only that; strings in envelopes hold nothing but IP texts, so a byte rewrite is exact),
;;   then Chez's `read`: the text is libpeer's, nothing from the network is read here.
;; - Envelopes in: what recv returns is untrusted. It is walked first (bounded: types, depth,
;;   elements, lengths), then `write`n and handed to peer_ext_push, which parses it with
;;   libpeer's safe reader. Anything refused is dropped like a corrupt frame, never raised.
;; - One mutex (recursive) for all pumping: the program's recv/send never run concurrently,
;;   and peer-poll takes the same lock as the library thread.
;; - `thread` peers: one library thread serves them all while the program is idle; it starts
;;   with the first such peer and ends when none is alive. `poll` peers: pumped only by
;;   peer-poll and by blocking calls while they wait.
;; - A blocking call runs on a worker thread when the caller has something to do meanwhile:
;;   pump `poll` peers, or watch for an exception the library thread catches in the recv/send
;;   of the `thread` peer the call is on, which the call then raises at once.
(library (peer transport)
  (export run-blocking pump-one! start-serving!)
  (import (chezscheme) (peer ffi) (peer error) (peer handle))

  ;; ---- envelopes ----------------------------------------------------------------------

  (define utf-8 (make-transcoder (utf-8-codec) (eol-style none) (error-handling-mode raise)))

  ;; libpeer's envelope bytes -> the datum, `#u8(` read as `#vu8(`.
  (define (read-envelope bv)
    (let ([n (bytevector-length bv)])
      (define (u8-open? i)                     ; "#u8(" at i
        (and (fx<= (fx+ i 4) n)
             (fx= (bytevector-u8-ref bv i) 35) (fx= (bytevector-u8-ref bv (fx+ i 1)) 117)
             (fx= (bytevector-u8-ref bv (fx+ i 2)) 56) (fx= (bytevector-u8-ref bv (fx+ i 3)) 40)))
      (let-values ([(out get) (open-bytevector-output-port)])
        (let loop ([from 0] [i 0])
          (cond
            [(fx= i n) (put-bytevector out bv from (fx- n from))]
            [(u8-open? i)
             (put-bytevector out bv from (fx- i from))
             (put-bytevector out #vu8(35 118 117 56 40))      ; "#vu8("
             (loop (fx+ i 4) (fx+ i 4))]
            [else (loop from (fx+ i 1))]))
        (parameterize ([case-sensitive #t])
          (read (open-bytevector-input-port (get) utf-8))))))

  (define max-depth 10)                  ; vectors nested at most this deep
  (define max-total 1048576)             ; elements in all; bytes of strings, bytevectors

  ;; Whether x is made only of the datums of docs/PROTOCOL.md §4, within the bounds above.
  ;; Cycles are caught by the depth bound, shared structure by the element count.
  (define (acceptable? x)
    (let ([elements 0] [size 0])
      (define (add-size! n) (set! size (+ size n)) (<= size max-total))
      (let walk ([x x] [depth 0])
        (set! elements (fx+ elements 1))
        (and (fx<= elements max-total)
             (cond
               [(vector? x)
                (and (fx< depth max-depth)
                     (let ([n (vector-length x)])
                       (let loop ([i 0])
                         (or (fx= i n)
                             (and (walk (vector-ref x i) (fx+ depth 1)) (loop (fx+ i 1)))))))]
               [(bytevector? x) (add-size! (bytevector-length x))]
               [(string? x) (add-size! (string-length x))]
               [(symbol? x) (and (not (gensym? x)) (add-size! (string-length (symbol->string x))))]
               [(boolean? x) #t]
               ;; A huge integer costs much to write; libpeer refuses past 80 digits anyway.
               [(and (integer? x) (exact? x)) (add-size! (fxquotient (bitwise-length x) 3))]
               [else #f])))))

  ;; x as UTF-8 text, printed the standard way whatever the program set.
  (define (datum->utf8 x)
    (let-values ([(out get) (open-bytevector-output-port utf-8)])
      (parameterize ([print-graph #f] [print-level #f] [print-length #f] [print-radix 10]
                     [print-vector-length #f] [print-gensym #t])
        (write x out))
      (flush-output-port out)
      (get)))

  ;; Hand one datum from recv to libpeer; refused ones are dropped silently.
  (define (push! ptr x)
    (guard (e (#t #f))
      (when (acceptable? x)
        (let ([bv (datum->utf8 x)])
          (with-locked (bv) (%ext-push ptr bv (bytevector-length bv)))))))

  ;; ---- pumping ------------------------------------------------------------------------

  (define pump-batch 64)                 ; envelopes per peer and direction per round
  (define pump-mutex (make-mutex))
  ;; Out-parameters of peer_ext_pop: ip[64] at 0, port at 64, envelope pointer at 72,
  ;; length at 80. Foreign memory, so it cannot move; used with pump-mutex held.
  (define scratch (foreign-alloc 96))

  (define (scratch-ip)
    (let loop ([i 0] [acc '()])
      (let ([b (if (fx= i (fx- ip-buf-len 1)) 0 (foreign-ref 'unsigned-8 scratch i))])
        (if (fx= b 0)
            (utf8->string (u8-list->bytevector (reverse acc)))
            (loop (fx+ i 1) (cons b acc))))))

  (define (pop-one ptr)                  ; -> (ip port envelope-bytes) or #f
    (let ([rc (%ext-pop ptr 0 scratch (+ scratch 64) (+ scratch 72) (+ scratch 80))])
      (and (eqv? rc 0)
           (let* ([env (foreign-ref 'uptr scratch 72)]
                  [len (foreign-ref 'size_t scratch 80)]
                  [bv (copy-out env len)])
             (%bytes-free env len)
             (list (scratch-ip) (foreign-ref 'unsigned-16 scratch 64) bv)))))

  ;; Moves up to pump-batch envelopes each way for rec -> how many moved. report #f: an
  ;; exception of recv/send propagates (the program's thread); else (report rec what e)
  ;; takes it and this peer's round goes on (a failed send is a lost message).
  (define failed (list 'failed))         ; what `program` returns when report took it

  (define (pump-peer! rec report)
    (with-mutex pump-mutex
      (let ([ptr (live-ptr rec)] [recv (peer-record-recv rec)] [send (peer-record-send rec)])
        (define (program what thunk)     ; -> thunk's value, or `failed`
          (if report
              (guard (e (#t (report rec what e) failed)) (thunk))
              (thunk)))
        (if (eqv? ptr 0)
            0
            (let out ([n 0])
              (let ([msg (and (fx< n pump-batch) (pop-one ptr))])
                (if msg
                    (let ([envelope (read-envelope (caddr msg))])
                      (program 'send (lambda () (send (car msg) (cadr msg) envelope)))
                      (out (fx+ n 1)))
                    (let in ([m 0])
                      (let ([x (if (fx< m pump-batch) (program 'recv recv) #f)])
                        (if (or (not x) (eof-object? x) (eq? x failed))
                            (fx+ n m)
                            (begin (push! ptr x) (in (fx+ m 1)))))))))))))

  ;; peer-poll: the program's own thread, so exceptions propagate.
  (define (pump-one! rec) (pump-peer! rec #f))

  ;; ---- exceptions caught on the library thread ----------------------------------------

  ;; A blocking call waiting on a peer: the worker sets done/result, the library thread
  ;; sets raised (a box) when that peer's recv/send raised meanwhile.
  (define-record-type waiter (fields mutex cond (mutable done) (mutable result) (mutable raised)))
  (define waiters-mutex (make-mutex))

  (define (add-waiter! rec w)
    (with-mutex waiters-mutex (peer-record-waiters-set! rec (cons w (peer-record-waiters rec)))))
  (define (remove-waiter! rec w)
    (with-mutex waiters-mutex (peer-record-waiters-set! rec (remq w (peer-record-waiters rec)))))

  (define (error-line what x)
    (let ([port (current-error-port)])
      (put-string port (format "peer: ~a raised: " what))
      (if (condition? x) (display-condition x port) (write x port))
      (newline port)
      (flush-output-port port)))

  ;; The waiting calls on rec raise e; with none, rec's on-error gets it, here.
  (define (report! rec what e)
    (let ([ws (with-mutex waiters-mutex (peer-record-waiters rec))])
      (if (pair? ws)
          (for-each (lambda (w)
                      (with-mutex (waiter-mutex w)
                        (unless (waiter-raised w) (waiter-raised-set! w (box e)))
                        (condition-broadcast (waiter-cond w))))
                    ws)
          (guard (e2 (#t (error-line "on-error" e2)))
            (let ([on-error (peer-record-on-error rec)])
              (if (procedure? on-error) (on-error e) (error-line what e)))))))

  ;; ---- the library thread -------------------------------------------------------------

  (define serve-mutex (make-mutex))
  (define serve-cond (make-condition))
  (define serving? #f)
  (define kicked? #f)                    ; a blocking call started: serve at once
  (define backoff-min 50000)             ; ns, doubling to backoff-max while nothing moves
  (define backoff-max 5000000)

  ;; Called after a `thread` peer is registered.
  (define (start-serving!)
    (with-mutex serve-mutex
      (unless serving?
        (set! serving? #t)
        (fork-thread serve))))

  (define (kick!)
    (with-mutex serve-mutex (set! kicked? #t) (condition-signal serve-cond)))

  ;; One round over every live `thread` peer -> envelopes moved, #f when there is none.
  (define (serve-round!)
    (drain!)
    (let ([peers (live-externals 'thread)])
      (and (pair? peers)
           (fold-left (lambda (acc rec) (fx+ acc (pump-peer! rec report!))) 0 peers))))

  (define (serve)
    (let loop ([backoff backoff-min])
      ;; Not the program's exception (report! took those): keep serving regardless.
      (let ([moved (guard (e (#t (error-line "the library thread" e) 0)) (serve-round!))])
        (cond
          [(not moved)
           (unless (with-mutex serve-mutex            ; a peer registered meanwhile?
                     (and (null? (live-externals 'thread)) (begin (set! serving? #f) #t)))
             (loop backoff-min))]
          [(fx> moved 0) (loop backoff-min)]
          [else
           (let ([kicked (with-mutex serve-mutex
                           (unless kicked?
                             (condition-wait serve-cond serve-mutex
                               (make-time 'time-duration backoff 0)))
                           (let ([k kicked?]) (set! kicked? #f) k))])
             (loop (if kicked backoff-min (fxmin backoff-max (fx* 2 backoff)))))]))))

  ;; ---- worker threads -----------------------------------------------------------------

  ;; Threads that run blocking calls: reused, since a fork-thread per call costs ~80 us
  ;; and handing a job to an idle worker ~13 us. A worker idle for worker-idle-limit
  ;; retires, so none lingers after a burst. A job never raises (run-blocking catches).
  (define-record-type worker (fields mutex cond (mutable job)))
  (define pool-mutex (make-mutex))
  (define idle-workers '())
  (define worker-idle-limit (make-time 'time-duration 0 10))

  (define (worker-loop w job)
    (job)
    (with-mutex pool-mutex (set! idle-workers (cons w idle-workers)))
    (let wait ()
      (let ([next (with-mutex (worker-mutex w)
                    (unless (worker-job w)
                      (condition-wait (worker-cond w) (worker-mutex w) worker-idle-limit))
                    (let ([j (worker-job w)]) (worker-job-set! w #f) j))])
        (cond
          [next (worker-loop w next)]
          ;; Still on the idle list: nobody is handing it a job, so it may retire.
          [(with-mutex pool-mutex
             (and (memq w idle-workers)
                  (begin (set! idle-workers (remq w idle-workers)) #t)))
           (void)]
          [else (wait)]))))                  ; taken off the list: its job is on the way

  (define (submit! job)
    (let ([w (with-mutex pool-mutex
               (and (pair? idle-workers)
                    (let ([w (car idle-workers)]) (set! idle-workers (cdr idle-workers)) w)))])
      (if w
          (with-mutex (worker-mutex w)
            (worker-job-set! w job)
            (condition-signal (worker-cond w)))
          (let ([w (make-worker (make-mutex) (make-condition) #f)])
            (fork-thread (lambda () (worker-loop w job)))))))

  ;; ---- blocking calls -----------------------------------------------------------------

  (define poll-wait (make-time 'time-duration 500000 0))   ; 0.5 ms when nothing moved
  (define idle-wait (make-time 'time-duration 50000000 0)) ; 50 ms: notice new poll peers

  ;; Runs thunk (a C call on rec and its error read, which never raises) and returns its
  ;; value. On this thread when nothing else needs doing; otherwise on a worker while this
  ;; thread pumps `poll` peers (their exceptions propagate at once) and, for a `thread`
  ;; peer, raises what its recv/send raised meanwhile. An abandoned call finishes on its
  ;; worker and its result is dropped (thunk releases what it holds itself).
  (define (run-blocking rec thunk)
    (let ([threaded (eq? (peer-record-mode rec) 'thread)])
      (when threaded (kick!))
      (if (and (not threaded) (null? (live-externals 'poll)))
          (thunk)
          (let ([w (make-waiter (make-mutex) (make-condition) #f #f #f)])
            (submit! (lambda ()
                       (let ([r (guard (e (#t (box e))) (thunk))])
                         (with-mutex (waiter-mutex w)
                           (waiter-result-set! w r)
                           (waiter-done-set! w #t)
                           (condition-broadcast (waiter-cond w))))))
            (dynamic-wind
              (lambda () (when threaded (add-waiter! rec w)))
              (lambda () (wait-for w))
              (lambda () (when threaded (remove-waiter! rec w))))))))

  (define (wait-for w)
    (let loop ()
      (let ([raised (with-mutex (waiter-mutex w) (waiter-raised w))])
        (cond
          [raised (raise (unbox raised))]
          [(with-mutex (waiter-mutex w) (waiter-done w))
           (let ([r (waiter-result w)]) (if (box? r) (raise (unbox r)) r))]
          [else
           (let* ([polled (live-externals 'poll)]
                  [moved (fold-left (lambda (acc rec) (fx+ acc (pump-peer! rec #f))) 0 polled)])
             (when (fx= moved 0)
               (with-mutex (waiter-mutex w)
                 (unless (or (waiter-done w) (waiter-raised w))
                   (condition-wait (waiter-cond w) (waiter-mutex w)
                     (if (null? polled) idle-wait poll-wait)))))
             (loop))])))))
