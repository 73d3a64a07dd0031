;; (peer): Chez Scheme binding of libpeer's C ABI (include/peer.h).
;;
;; - libpeer.so is loaded once, from $LIBPEER_DIR (default target/release), before any
;;   foreign-procedure names its symbols.
;; - Every call that can block is declared __collect_safe so other threads keep running and
;;   collecting meanwhile; its buffers are locked bytevectors (lock-object) or foreign memory,
;;   because the collector may move an unlocked bytevector during such a call.
;; - A handle is a uptr in a mutable cell; peer-close and a guardian share one idempotent
;;   free, so a handle is freed once. The guardian is drained at the start of each call into
;;   the library, never from collect-request-handler: freeing joins the peer's thread.
;; - External peers (the draft's (peer uid recv send replication)) have no sockets: while any
;;   is alive, a blocking call runs on a worker thread and the calling thread moves messages
;;   for every live external peer until the call returns. recv/send are only ever called from
;;   a thread that is making a call.
;; - Errors raise &peer-error (library (peer error)) with libpeer's message for the call.
(library (peer)
  (export peer peer? peer-open peer-close peer-port peer-uid peer-forget
          peer-connect peer-bootstrap peer-set peer-ref
          peer-bag-publish peer-bag-popular peer-bag-recent peer-bag-sample
          peer-bag-popular-at peer-bag-recent-at peer-bag-sample-at
          peer-namespace-set peer-namespace-ref peer-namespace-ref-at
          peer-keypair peer-random-uid peer-max-value-size peer-wire-normalize)
  (import (chezscheme) (peer error))

  ;; ---- loading ----------------------------------------------------------------------

  (define libpeer-loaded
    (let ([dir (or (getenv "LIBPEER_DIR") "target/release")])
      (load-shared-object "libc.so.6")          ; memcpy, to copy C buffers out fast
      (load-shared-object (string-append dir "/libpeer.so"))
      #t))

  ;; ---- raw C functions (names as in peer.h) -------------------------------------------

  (define %memcpy (foreign-procedure "memcpy" (u8* uptr size_t) uptr))
  (define %new (foreign-procedure __collect_safe "peer_new"
                 (u8* u8* unsigned-16 unsigned-32 u8*) int))
  (define %new-external (foreign-procedure __collect_safe "peer_new_external"
                          (u8* u8* unsigned-16 unsigned-32 u8*) int))
  (define %new-with (foreign-procedure __collect_safe "peer_new_with"
                      (u8* u8* unsigned-16 uptr u8*) int))
  (define %options-init (foreign-procedure "peer_options_init" (uptr) void))
  (define %forget (foreign-procedure __collect_safe "peer_forget" (uptr u8*) int))
  (define %free (foreign-procedure __collect_safe "peer_free" (uptr) void))
  (define %port (foreign-procedure "peer_port" (uptr) unsigned-16))
  (define %uid (foreign-procedure "peer_uid" (uptr u8*) int))
  (define %connect (foreign-procedure __collect_safe "peer_connect" (uptr u8* unsigned-16) int))
  (define %bootstrap (foreign-procedure __collect_safe "peer_bootstrap" (uptr) int))
  (define %set (foreign-procedure __collect_safe "peer_set" (uptr u8* size_t u8*) int))
  (define %ref (foreign-procedure __collect_safe "peer_ref" (uptr u8* u8* u8*) int))
  (define %bytes-free (foreign-procedure "peer_bytes_free" (uptr size_t) void))
  (define %bag-publish (foreign-procedure __collect_safe "peer_bag_publish" (uptr u8* u8*) int))
  (define-syntax define-bag
    (syntax-rules ()
      [(_ name at-name c-name c-at-name)
       (begin
         (define name (foreign-procedure __collect_safe c-name
                        (uptr u8* u8* size_t u8*) int))
         (define at-name (foreign-procedure __collect_safe c-at-name
                           (uptr u8* u8* u8* size_t u8*) int)))]))
  (define-bag %bag-popular %bag-popular-at "peer_bag_popular" "peer_bag_popular_at")
  (define-bag %bag-recent %bag-recent-at "peer_bag_recent" "peer_bag_recent_at")
  (define-bag %bag-sample %bag-sample-at "peer_bag_sample" "peer_bag_sample_at")
  (define %ns-set (foreign-procedure __collect_safe "peer_namespace_set"
                    (uptr u8* u8* u8* u8* u8*) int))
  (define %ns-ref (foreign-procedure __collect_safe "peer_namespace_ref"
                    (uptr u8* u8* u8* u8*) int))
  (define %ns-ref-at (foreign-procedure __collect_safe "peer_namespace_ref_at"
                       (uptr u8* u8* u8* u8* u8*) int))
  (define %ns-ref-pinned (foreign-procedure __collect_safe "peer_namespace_ref_pinned"
                           (uptr u8* u8* u8* u8*) int))
  (define %ns-ref-at-pinned (foreign-procedure __collect_safe "peer_namespace_ref_at_pinned"
                              (uptr u8* u8* u8* u8* u8*) int))
  (define %keypair (foreign-procedure "peer_keypair" (u8* u8*) void))
  (define %random-uid (foreign-procedure "peer_random_uid" (u8*) void))
  (define %strerror (foreign-procedure "peer_strerror" (int) utf-8))
  (define %last-error (foreign-procedure "peer_last_error" () utf-8))
  (define %status-symbol (foreign-procedure "peer_status_symbol" (int) utf-8))
  (define %status-count (foreign-procedure "peer_status_count" () size_t))
  (define %status-codes (foreign-procedure "peer_status_codes" (u8* size_t u8*) int))
  (define %max-value-size (foreign-procedure "peer_max_value_size" () size_t))
  (define %ext-push (foreign-procedure __collect_safe "peer_ext_push" (uptr u8* size_t) int))
  (define %ext-pop (foreign-procedure __collect_safe "peer_ext_pop"
                     (uptr unsigned-32 uptr uptr uptr uptr) int))
  (define %wire-normalize (foreign-procedure "peer_wire_normalize" (u8* size_t u8* u8*) int))

  (define peer-max-value-size (%max-value-size))

  ;; ---- small helpers ------------------------------------------------------------------

  ;; libpeer's statuses as ((symbol . number) ...), read from the library once at load time
  ;; (peer_status_codes, peer_status_symbol), so no status number is copied here.
  (define status-table
    (let* ([n (%status-count)]
           [int-size (foreign-sizeof 'int)]
           [size-size (foreign-sizeof 'size_t)]
           [codes (make-bytevector (* (max n 1) int-size) 0)]
           [count (make-bytevector size-size 0)])
      (unless (eqv? (%status-codes codes n count) 0)
        (error 'peer "cannot read libpeer's status codes" (%last-error)))
      (map (lambda (i)
             (let ([code (bytevector-sint-ref codes (* i int-size) (native-endianness) int-size)])
               (cons (string->symbol (%status-symbol code)) code)))
           (iota (bytevector-uint-ref count 0 (native-endianness) size-size)))))

  ;; The number of the status named `symbol`.
  (define (status-code symbol)
    (cond [(assq symbol status-table) => cdr]
          [else (error 'peer "libpeer has no status" symbol)]))

  (define status-invalid (status-code 'invalid))
  (define status-closed (status-code 'closed))
  (define status-unreachable (status-code 'unreachable))

  (define (invalid who message . irritants)
    (apply raise-peer-error who status-invalid message irritants))

  ;; Lock bytevector arguments (#f = NULL is left alone) for the duration of a
  ;; __collect_safe call, so the collector cannot move them while C writes into them.
  (define-syntax with-locked
    (syntax-rules ()
      [(_ (x ...) body ...)
       (dynamic-wind
         (lambda () (when x (lock-object x)) ... (void))
         (lambda () body ...)
         (lambda () (when x (unlock-object x)) ... (void)))]))

  ;; Copy n bytes of C memory into a fresh bytevector (memcpy is not collect-safe, so the
  ;; destination cannot move during it).
  (define (copy-out ptr n)
    (let ([bv (make-bytevector n)])
      (unless (fx= n 0) (%memcpy bv ptr n))
      bv))

  (define (out-word bv) (bytevector-u64-native-ref bv 0))

  (define (c-string bytes-nul)        ; a string as a NUL-terminated bytevector
    (let* ([b (string->utf8 bytes-nul)]
           [n (bytevector-length b)]
           [r (make-bytevector (fx+ n 1) 0)])
      (bytevector-copy! b 0 r 0 n)
      r))

  (define (check-id who what x)
    (unless (and (bytevector? x) (fx= (bytevector-length x) 32))
      (invalid who (format "~a must be a 32-byte bytevector" what) x)))

  (define (check-range who what x lo hi)
    (unless (and (integer? x) (exact? x) (<= lo x hi))
      (invalid who (format "~a must be an exact integer in ~a..~a" what lo hi) x)))

  (define (check-ip who ip)
    (unless (and (string? ip)
                 (not (exists (lambda (c) (char=? c #\nul)) (string->list ip))))
      (invalid who "ip must be a string without NUL characters" ip)))

  ;; ---- handles, registry, guardian ----------------------------------------------------

  ;; The cell is all the guardian keeps: it must not reach recv/send, whose closures often
  ;; reach the peer record itself (a routing table), which would keep the record alive.
  (define-record-type handle (fields (mutable ptr)))

  (define-record-type (peer-record make-peer-record peer?)
    (fields cell recv send ext-port)   ; recv/send/ext-port: #f for a TCP peer
    (opaque #t) (sealed #t))

  (define registry-mutex (make-mutex))
  (define peer-guardian (make-guardian))
  ;; Live external peers, held weakly: a list built with weak-cons.
  (define externals '())

  (define (free-handle! cell)
    (let ([ptr (with-mutex registry-mutex
                 (let ([ptr (handle-ptr cell)]) (handle-ptr-set! cell 0) ptr))])
      (unless (eqv? ptr 0) (%free ptr))))

  (define (prune-externals!)                    ; call with registry-mutex held
    (set! externals
      (let loop ([l externals])
        (cond [(null? l) '()]
              [(let ([r (car l)])
                 (or (bwp-object? r) (eqv? (handle-ptr (peer-record-cell r)) 0)))
               (loop (cdr l))]
              [else (weak-cons (car l) (loop (cdr l)))]))))

  ;; Frees the handles of peers the program dropped without closing.
  (define (drain!)
    (let loop ([dropped #f])
      (let ([cell (peer-guardian)])
        (if cell
            (begin (free-handle! cell) (loop #t))
            (when dropped (with-mutex registry-mutex (prune-externals!)))))))

  (define (live-externals)
    (with-mutex registry-mutex
      (let loop ([l externals] [acc '()])
        (cond [(null? l) (reverse acc)]
              [(let ([r (car l)])
                 (and (not (bwp-object? r)) (not (eqv? (handle-ptr (peer-record-cell r)) 0))))
               (loop (cdr l) (cons (car l) acc))]
              [else (loop (cdr l) acc)]))))

  (define (register! rec)
    (peer-guardian rec (peer-record-cell rec))
    (when (peer-record-recv rec)
      (with-mutex registry-mutex (set! externals (weak-cons rec externals)))))

  ;; The live handle of p, or a raised error.
  (define (ptr-of who p)
    (unless (peer? p) (invalid who "not a peer" p))
    (let ([ptr (handle-ptr (peer-record-cell p))])
      (when (eqv? ptr 0) (raise-peer-error who status-closed "peer is closed" p))
      ptr))

  (define writer-installed          ; a definition: Chez wants no expression before one
    (record-writer (record-type-descriptor peer-record)
      (lambda (r port wr)
        (let ([ptr (handle-ptr (peer-record-cell r))])
          (if (eqv? ptr 0)
              (display "#<peer closed>" port)
              (fprintf port "#<peer ~a>" (or (peer-record-ext-port r) (%port ptr))))))))

  ;; ---- moving messages of external peers ----------------------------------------------

  (define pump-batch 64)                 ; messages moved per peer and direction per round
  ;; One thread pumps at a time, so the program's recv/send never run concurrently even
  ;; when several threads make calls. The mutex is recursive: a send that calls into (peer)
  ;; pumps again on the same thread.
  ;; Out-parameters of peer_ext_pop: ip[64] at 0, port at 64, envelope pointer at 72,
  ;; length at 80. Foreign memory, so it cannot move; read out before send runs.
  (define scratch (foreign-alloc 96))
  (define pump-mutex (make-mutex))

  (define (scratch-ip)
    (let loop ([i 0] [acc '()])
      (let ([b (if (fx= i 63) 0 (foreign-ref 'unsigned-8 scratch i))])
        (if (fx= b 0)
            (utf8->string (u8-list->bytevector (reverse acc)))
            (loop (fx+ i 1) (cons b acc))))))

  (define (pop-one ptr)                  ; -> (ip port envelope) or #f; pump-mutex held
    (let ([rc (%ext-pop ptr 0 scratch (+ scratch 64) (+ scratch 72) (+ scratch 80))])
      (and (eqv? rc 0)
           (let* ([env (foreign-ref 'uptr scratch 72)]
                  [len (foreign-ref 'size_t scratch 80)]
                  [bv (copy-out env len)])
             (%bytes-free env len)
             (list (scratch-ip) (foreign-ref 'unsigned-16 scratch 64) bv)))))

  (define (pump-peer! rec)               ; -> number of messages moved
    (let ([ptr (handle-ptr (peer-record-cell rec))])
      (if (eqv? ptr 0)
          0
          (let out ([n 0])
            (let ([msg (and (fx< n pump-batch) (pop-one ptr))])
              (if msg
                  (begin (apply (peer-record-send rec) msg) (out (fx+ n 1)))
                  (let in ([m 0])
                    (let ([payload (and (fx< m pump-batch) ((peer-record-recv rec)))])
                      (cond
                        [(not payload) (fx+ n m)]
                        [(bytevector? payload)
                         ;; A malformed envelope (-10) is dropped, as a network would drop
                         ;; garbage; it must not abort the program's call.
                         (with-locked (payload)
                           (%ext-push ptr payload (bytevector-length payload)))
                         (in (fx+ m 1))]
                        [else (invalid 'peer "recv must return #f or a bytevector"
                                       payload)])))))))))

  (define idle-wait (make-time 'time-duration 500000 0))  ; 0.5 ms when nothing moved

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

  ;; Runs thunk (a C call and its error read, see `call`), pumping external peers meanwhile.
  (define (run-blocking thunk)
    (if (null? (live-externals))
        (thunk)
        (let ([m (make-mutex)] [c (make-condition)] [done #f] [result #f] [exn #f])
          (submit!
            (lambda ()
              (let ([r (guard (e (#t (set! exn e) #f)) (thunk))])
                (with-mutex m (set! result r) (set! done #t) (condition-broadcast c)))))
          (let loop ()
            (unless (with-mutex m done)
              (let ([moved (with-mutex pump-mutex
                             (fold-left (lambda (acc rec) (fx+ acc (pump-peer! rec)))
                                        0 (live-externals)))])
                (when (fx= moved 0)
                  (with-mutex m (unless done (condition-wait c m idle-wait)))))
              (loop)))
          (if exn (raise exn) result))))

  ;; (call (bv ...) c-expr): evaluate c-expr with the bytevectors locked, reading
  ;; peer_last_error on the same thread right after it; -> (status . message).
  (define-syntax call
    (syntax-rules ()
      [(_ (bv ...) c-expr)
       (run-blocking
         (lambda ()
           (with-locked (bv ...)
             (let* ([rc c-expr]
                    [msg (if (< rc 0) (%last-error) "")])
               (cons rc msg)))))]))

  ;; -> status (0 or 1); raises on a negative one.
  (define (status who res)
    (let ([rc (car res)])
      (when (< rc 0)
        (raise-peer-error who rc
          (if (string=? (cdr res) "") (%strerror rc) (cdr res))))
      rc))

  ;; ---- constructors and handle procedures ---------------------------------------------

  ;; c-new: (uid-or-#f ipz arg out) with `arg` the replication, or a struct peer_options
  ;; address for %new-with.
  (define (make who c-new uid ip port arg recv send ext-port)
    (drain!)
    (check-ip who ip)
    (check-range who "port" port 0 65535)
    (let ([uid (and uid (bytevector-copy uid))] [ipz (c-string ip)] [out (make-bytevector 8 0)])
      ;; Creation needs no pumping, so it never waits on another thread.
      (status who (with-locked (uid ipz out)
                    (let* ([rc (c-new uid ipz port arg out)]
                           [msg (if (< rc 0) (%last-error) "")])
                      (cons rc msg))))
      (let ([rec (make-peer-record (make-handle (out-word out)) recv send ext-port)])
        (register! rec)
        rec)))

  (define-ftype peer-options
    (struct [size size_t] [replication unsigned-32] [data-dir uptr]
            [republish unsigned-32] [expire unsigned-32]))

  (define option-keys '(replication data-dir republish expire))

  ;; peer_new_with, its struct peer_options (and data_dir string) in foreign memory freed
  ;; after the call: peer_options_init, then the fields of the alist `options`.
  (define (open-with who uid ip port options)
    (when uid (check-id who "uid" uid))
    (unless (and (list? options)
                 (for-all (lambda (e) (and (pair? e) (memq (car e) option-keys))) options))
      (invalid who (format "options must be an integer (the replication) or an alist of ~a"
                     option-keys)
        options))
    (let ([value (lambda (key default) (cond [(assq key options) => cdr] [else default]))])
      (for-each (lambda (key) (check-range who (format "option ~a" key) (value key 0) 0 #xFFFFFFFF))
        '(replication republish expire))
      (let ([dir (value 'data-dir #f)])
        (unless (or (not dir)
                    (and (string? dir) (not (exists (lambda (c) (char=? c #\nul)) (string->list dir)))))
          (invalid who "option data-dir must be a string without NUL characters" dir))
        (let* ([dirz (and dir (string->utf8 dir))]
               [o (make-ftype-pointer peer-options (foreign-alloc (ftype-sizeof peer-options)))]
               [d (if dirz (foreign-alloc (fx+ (bytevector-length dirz) 1)) 0)])
          (dynamic-wind
            (lambda () (void))
            (lambda ()
              (when dirz
                (do ([i 0 (fx+ i 1)]) ((fx= i (bytevector-length dirz)))
                  (foreign-set! 'unsigned-8 d i (bytevector-u8-ref dirz i)))
                (foreign-set! 'unsigned-8 d (bytevector-length dirz) 0))
              (%options-init (ftype-pointer-address o))
              (ftype-set! peer-options (replication) o (value 'replication 0))
              (ftype-set! peer-options (data-dir) o d)
              (ftype-set! peer-options (republish) o (value 'republish 0))
              (ftype-set! peer-options (expire) o (value 'expire 0))
              (make who %new-with uid ip port (ftype-pointer-address o) #f #f #f))
            (lambda ()
              (foreign-free (ftype-pointer-address o))
              (unless (eqv? d 0) (foreign-free d))))))))

  ;; The 4th argument: the replication (an integer), or an alist of options (uid may be #f).
  (define peer-open
    (case-lambda
      [(uid ip port) (peer-open uid ip port 5)]
      [(uid ip port options)
       (if (and (integer? options) (exact? options))
           (begin
             (check-id 'peer-open "uid" uid)
             (check-range 'peer-open "replication" options 0 #xFFFFFFFF)
             (make 'peer-open %new uid ip port options #f #f #f))
           (open-with 'peer-open uid ip port options))]))

  (define (default-port uid)
    (+ 1024 (mod (+ (* 256 (bytevector-u8-ref uid 0)) (bytevector-u8-ref uid 1)) 64000)))

  (define peer
    (case-lambda
      [(uid recv send replication)
       (check-id 'peer "uid" uid)
       (peer uid recv send replication "127.0.0.1" (default-port uid))]
      [(uid recv send replication ip port)
       (unless (procedure? recv) (invalid 'peer "recv must be a procedure" recv))
       (unless (procedure? send) (invalid 'peer "send must be a procedure" send))
       (check-id 'peer "uid" uid)
       (check-range 'peer "replication" replication 0 #xFFFFFFFF)
       (make 'peer %new-external uid ip port replication recv send port)]))

  (define (peer-close p)
    (unless (peer? p) (invalid 'peer-close "not a peer" p))
    (free-handle! (peer-record-cell p))
    (with-mutex registry-mutex (prune-externals!))
    (drain!))

  (define (peer-port p)
    (drain!)
    (let ([ptr (ptr-of 'peer-port p)])
      (or (peer-record-ext-port p) (%port ptr))))

  (define (peer-uid p)
    (drain!)
    (let* ([ptr (ptr-of 'peer-uid p)]
           [out (make-bytevector 32 0)]
           [rc (%uid ptr out)]
           [msg (if (< rc 0) (%last-error) "")])
      (status 'peer-uid (cons rc msg))
      out))

  ;; Stop republishing what p stored under key: #t, or #f when nothing was.
  (define (peer-forget p key)
    (drain!)
    (let ([ptr (ptr-of 'peer-forget p)])
      (check-id 'peer-forget "key" key)
      (eqv? (status 'peer-forget (call (key) (%forget ptr key))) 0)))

  ;; ---- network procedures --------------------------------------------------------------

  (define (peer-connect p ip port)
    (drain!)
    (let ([ptr (ptr-of 'peer-connect p)])
      (check-ip 'peer-connect ip)
      (check-range 'peer-connect "port" port 0 65535)
      (let* ([ipz (c-string ip)]
             [res (call (ipz) (%connect ptr ipz port))])
        (if (eqv? (car res) status-unreachable) #f (begin (status 'peer-connect res) #t)))))

  (define (peer-bootstrap p)
    (drain!)
    (let ([ptr (ptr-of 'peer-bootstrap p)])
      (status 'peer-bootstrap (call () (%bootstrap ptr)))
      (void)))

  (define (peer-set p value)
    (drain!)
    (let ([ptr (ptr-of 'peer-set p)])
      (unless (bytevector? value) (invalid 'peer-set "value must be a bytevector" value))
      (let ([key (make-bytevector 32 0)])
        (status 'peer-set (call (value key) (%set ptr value (bytevector-length value) key)))
        key)))

  (define (peer-ref p key)
    (drain!)
    (let ([ptr (ptr-of 'peer-ref p)])
      (check-id 'peer-ref "key" key)
      (let* ([addr (make-bytevector 8 0)]
             [len (make-bytevector 8 0)]
             [rc (status 'peer-ref (call (key addr len) (%ref ptr key addr len)))])
        (and (eqv? rc 0)
             (let* ([a (out-word addr)] [n (out-word len)] [bv (copy-out a n)])
               (%bytes-free a n)
               bv)))))

  (define (peer-bag-publish p key value)
    (drain!)
    (let ([ptr (ptr-of 'peer-bag-publish p)])
      (check-id 'peer-bag-publish "key" key)
      (check-id 'peer-bag-publish "value" value)
      (status 'peer-bag-publish (call (key value) (%bag-publish ptr key value)))
      (void)))

  (define default-cap 20)

  ;; values_out (cap*32 bytes) and n_out -> vector of n fresh 32-byte bytevectors.
  (define (bag-vector buf n)
    (let ([v (make-vector n)])
      (do ([i 0 (fx+ i 1)]) ((fx= i n) v)
        (let ([b (make-bytevector 32)])
          (bytevector-copy! buf (fx* i 32) b 0 32)
          (vector-set! v i b)))))

  (define (bag who c-proc p key cap)
    (drain!)
    (let ([ptr (ptr-of who p)])
      (check-id who "key" key)
      (check-range who "cap" cap 0 100000)
      (let ([buf (make-bytevector (fx* 32 (fxmax cap 1)) 0)] [n (make-bytevector 8 0)])
        (status who (call (key buf n) (c-proc ptr key buf cap n)))
        (bag-vector buf (fxmin cap (out-word n))))))

  (define (bag-at who c-proc p uid key cap)
    (drain!)
    (let ([ptr (ptr-of who p)])
      (check-id who "uid" uid)
      (check-id who "key" key)
      (check-range who "cap" cap 0 100000)
      (let ([buf (make-bytevector (fx* 32 (fxmax cap 1)) 0)] [n (make-bytevector 8 0)])
        (status who (call (uid key buf n) (c-proc ptr uid key buf cap n)))
        (bag-vector buf (fxmin cap (out-word n))))))

  (define-syntax define-bag-procedures
    (syntax-rules ()
      [(_ name at-name c-proc c-at-proc)
       (begin
         (define name
           (case-lambda
             [(p key) (bag 'name c-proc p key default-cap)]
             [(p key cap) (bag 'name c-proc p key cap)]))
         (define at-name
           (case-lambda
             [(p uid key) (bag-at 'at-name c-at-proc p uid key default-cap)]
             [(p uid key cap) (bag-at 'at-name c-at-proc p uid key cap)])))]))

  (define-bag-procedures peer-bag-popular peer-bag-popular-at %bag-popular %bag-popular-at)
  (define-bag-procedures peer-bag-recent peer-bag-recent-at %bag-recent %bag-recent-at)
  (define-bag-procedures peer-bag-sample peer-bag-sample-at %bag-sample %bag-sample-at)

  ;; ---- namespaces ----------------------------------------------------------------------

  (define (peer-namespace-set p secret public key value)
    (drain!)
    (let ([ptr (ptr-of 'peer-namespace-set p)])
      (check-id 'peer-namespace-set "secret" secret)
      (check-id 'peer-namespace-set "public key" public)
      (check-id 'peer-namespace-set "key" key)
      (check-id 'peer-namespace-set "value" value)
      (let ([sig (make-bytevector 64 0)])
        (status 'peer-namespace-set
          (call (secret public key value sig) (%ns-set ptr secret public key value sig)))
        sig)))

  (define (check-signature who signature)
    (unless (and (bytevector? signature) (fx= (bytevector-length signature) 64))
      (invalid who "signature must be a 64-byte bytevector" signature)))

  (define peer-namespace-ref
    (case-lambda
      [(p public key) (namespace-ref 'peer-namespace-ref p #f public key #f)]
      [(p public key signature) (namespace-ref 'peer-namespace-ref p #f public key signature)]))

  (define peer-namespace-ref-at
    (case-lambda
      [(p uid public key) (namespace-ref 'peer-namespace-ref-at p uid public key #f)]
      [(p uid public key signature)
       (namespace-ref 'peer-namespace-ref-at p uid public key signature)]))

  ;; uid #f: the whole network; signature #f: the highest valid seq wins.
  (define (namespace-ref who p uid public key signature)
    (drain!)
    (let ([ptr (ptr-of who p)])
      (when uid (check-id who "uid" uid))
      (check-id who "public key" public)
      (check-id who "key" key)
      (when signature (check-signature who signature))
      (let* ([value (make-bytevector 32 0)]
             [sig-out (make-bytevector 64 0)]
             [res (cond
                    [(and uid signature)
                     (call (uid public key signature value)
                       (%ns-ref-at-pinned ptr uid public key signature value))]
                    [uid (call (uid public key value sig-out)
                           (%ns-ref-at ptr uid public key value sig-out))]
                    [signature (call (public key signature value)
                                 (%ns-ref-pinned ptr public key signature value))]
                    [else (call (public key value sig-out)
                            (%ns-ref ptr public key value sig-out))])])
        (and (eqv? (status who res) 0) value))))

  ;; ---- local procedures ----------------------------------------------------------------

  (define (peer-keypair)
    (let ([secret (make-bytevector 32 0)] [public (make-bytevector 32 0)])
      (%keypair secret public)
      (values secret public)))

  (define (peer-random-uid)
    (let ([uid (make-bytevector 32 0)])
      (%random-uid uid)
      uid))

  ;; Diagnostic for the conformance tests: libpeer's canonical text of one message. It
  ;; writes R7RS `#u8(...)`, which Chez 9.5's `read` rejects; the test prelude rewrites
  ;; it to `#vu8(` before reading (scheme-tests/chez-prelude.ss, read-wire).
  (define (peer-wire-normalize text)
    (unless (string? text) (invalid 'peer-wire-normalize "text must be a string" text))
    (let* ([in (string->utf8 text)]
           [addr (make-bytevector 8 0)]
           [len (make-bytevector 8 0)]
           [rc (%wire-normalize in (bytevector-length in) addr len)]
           [msg (if (< rc 0) (%last-error) "")])
      (status 'peer-wire-normalize (cons rc msg))
      (let* ([a (out-word addr)] [n (out-word len)] [bv (copy-out a n)])
        (%bytes-free a (+ n 1))
        (utf8->string bv)))))
