;; Friendly wrappers over the %-prefixed stubs of peer.stub.
;;
;; A peer is a record holding the stub's handle (#f once closed). Blocking calls start a job
;; on a pthread (peer-glue.c) and the calling thread waits for it in short slices, so other
;; green threads, the collector and, above all, the external transport keep running: between
;; slices the caller pumps every live external peer (their messages out to `send`, what
;; `recv` returns in). Only one thread pumps at a time, so a program's queues need no locks.

(define-record-type <peer>
  (%make-peer handle recv send port)
  peer?
  (handle peer-handle set-peer-handle!)   ; stub handle, #f once closed
  (recv peer-recv)                        ; external transport: thunk, else #f
  (send peer-send)                        ; external transport: (send ip port bytes), else #f
  (port peer-ext-port))                   ; external transport: own port on the program's network

(define peer-max-value-size (%peer-max-value-size))

;;; Errors

;; libpeer's statuses as ((symbol . number) ...), read from the library once at load time
;; (peer_status_codes, peer_status_symbol), so no status number is copied here.
(define status-table
  (let ((codes (%peer-status-codes)))
    (unless (pair? codes) (error "peer: cannot read libpeer's status codes"))
    (map (lambda (code) (cons (string->symbol (%peer-status-symbol code)) code)) codes)))

;; The number of the status named `symbol`.
(define (status-code symbol)
  (let ((entry (assq symbol status-table)))
    (unless entry (error "peer: libpeer has no status" symbol))
    (cdr entry)))

(define status-not-found (status-code 'not-found))
(define status-unreachable (status-code 'unreachable))

(define (status-error who rc detail)
  (let ((text (%peer-strerror rc)))
    (error (string-append who ": " text
                          (if (and (string? detail) (positive? (string-length detail)))
                              (string-append ": " detail)
                              "")
                          " (status " (number->string rc) ")"))))

(define (check-bytes who what bv len)
  (unless (and (bytevector? bv) (= (bytevector-length bv) len))
    (error (string-append who ": " what " must be a " (number->string len)
                          "-byte bytevector")
           bv)))

(define (check-port who port)
  (unless (and (exact-integer? port) (<= 0 port 65535))
    (error (string-append who ": port must be an exact integer in 0..65535") port)))

(define (check-ip who ip)
  (unless (string? ip)
    (error (string-append who ": ip must be a string") ip)))

(define (check-replication who r)
  (unless (and (exact-integer? r) (<= 5 r 20))
    (error (string-append who ": replication must be an exact integer in 5..20") r)))

(define (check-cap who cap)
  (unless (and (exact-integer? cap) (<= 0 cap 65536))
    (error (string-append who ": cap must be an exact integer in 0..65536") cap)))

(define (live-handle who p)
  (unless (peer? p) (error (string-append who ": not a peer") p))
  (or (peer-handle p) (error (string-append who ": peer is closed") p)))

;;; The external transport

;; Ephemerons keyed by the live external peers: the registry never keeps a peer alive, so an
;; unreachable one is still collected (and its handle freed by the finalizer).
(define *externals* '())
(define *pump-mutex* (make-mutex 'peer-pump))
(define pump-batch 64)                    ; messages per direction per peer per round

(define (live-externals)
  (let loop ((es *externals*) (keep '()) (live '()))
    (if (null? es)
        (begin (set! *externals* (reverse keep)) (reverse live))
        (let ((p (ephemeron-key (car es))))
          (if (and p (not (ephemeron-broken? (car es))) (peer-handle p))
              (loop (cdr es) (cons (car es) keep) (cons p live))
              (loop (cdr es) keep live))))))

;; Moves one peer's waiting messages both ways; #t if anything moved.
(define (pump-one! p)
  (let ((moved #f))
    (let out ((i 0))
      (let ((h (peer-handle p)))
        (when (and h (< i pump-batch))
          (let ((m (%ext-pop h)))
            (when (pair? m)               ; else #f (nothing waiting) or a status (closed)
              (set! moved #t)
              ((peer-send p) (car m) (cadr m) (car (cddr m)))
              (out (+ i 1)))))))
    (let in ((i 0))
      (when (and (peer-handle p) (< i pump-batch))
        (let ((payload ((peer-recv p))))
          (when payload
            (unless (bytevector? payload)
              (error "peer: recv must return #f or a bytevector" payload))
            (set! moved #t)
            ;; A malformed envelope is the network's fault, not the caller's: drop it.
            (let ((h (peer-handle p)))
              (when h (%ext-push h payload)))
            (in (+ i 1))))))
    moved))

;; One round over every live external peer, unless another thread is already pumping.
(define (pump-externals!)
  (cond
   ((null? *externals*) #f)
   ((mutex-lock! *pump-mutex* 0)
    (dynamic-wind
     (lambda () #f)
     (lambda ()
       (let loop ((ps (live-externals)) (moved #f))
         (if (null? ps) moved (loop (cdr ps) (or (pump-one! (car ps)) moved)))))
     (lambda () (mutex-unlock! *pump-mutex*))))
   (else #f)))

;;; Blocking calls

;; The caller waits in slices: at most `wait` microseconds inside C (woken at once when the
;; call ends, so a quick call costs no polling delay), then a yield to the other green
;; threads and a round of pumping. Slices grow while nothing moves, up to a millisecond, so
;; a long call costs little CPU and no green thread waits more than about that long; while
;; external peers live, slices stay short to keep their messages moving. When several green
;; threads are waiting for calls, a C wait would hold up the others' (and hide their ends),
;; so they sleep in the scheduler (thread-sleep!) instead.
(define min-wait 50)
(define max-wait 1000)
(define max-wait-external 50)
(define waiters 0)                        ; green threads inside await!

(define (await! job)
  (define (slice-done? wait)
    (if (> waiters 1)
        (begin (thread-sleep! (/ wait 1e6)) (%job-done? job))
        (%job-wait job wait)))
  (dynamic-wind
   (lambda () (set! waiters (+ waiters 1)))
   (lambda ()
     (let loop ((wait min-wait))
       (unless (slice-done? wait)
         (thread-yield!)
         (loop (cond ((pump-externals!) min-wait)
                     ((null? *externals*) (min max-wait (* 2 wait)))
                     (else (min max-wait-external (* 2 wait))))))))
   (lambda () (set! waiters (- waiters 1)))))

;; Runs a started job to completion: its result, or #f for "not found" when allowed.
(define (finish who job)
  (unless job (error (string-append who ": cannot start a thread for the call")))
  (await! job)
  (let ((rc (%job-status job)))
    (cond ((= rc 0) (%job-result job))
          ((= rc status-not-found) #f)
          ;; The message was read on the call's own pthread and kept in the job.
          (else (status-error who rc (%job-error job))))))

;;; Construction and life cycle

(define (default-port uid)
  (+ 1024 (modulo (+ (* 256 (bytevector-u8-ref uid 0)) (bytevector-u8-ref uid 1)) 64000)))

(define (make-handle who uid ip port replication external?)
  (check-bytes who "uid" uid 32)
  (check-ip who ip)
  (check-port who port)
  (check-replication who replication)
  (let* ((h (%peer-new uid ip port replication external?))
         (rc (%peer-glue-last-status))
         (detail (%peer-last-error)))
    (or h (status-error who rc detail))))

(define (peer uid recv send replication . opt)
  (unless (procedure? recv) (error "peer: recv must be a procedure" recv))
  (unless (procedure? send) (error "peer: send must be a procedure" send))
  (check-bytes "peer" "uid" uid 32)
  (let* ((ip (if (pair? opt) (car opt) "127.0.0.1"))
         (port (if (and (pair? opt) (pair? (cdr opt))) (cadr opt) (default-port uid)))
         (h (make-handle "peer" uid ip port replication #t))
         (p (%make-peer h recv send port)))
    (set! *externals* (cons (make-ephemeron p #t) *externals*))
    p))

;; The optional 4th argument: the replication (an integer), or an alist of options
;; (replication, data-dir, republish, expire) for peer_new_with; then uid may be #f.
(define (peer-open uid ip port . opt)
  (let ((options (if (pair? opt) (car opt) 5)))
    (%make-peer (if (exact-integer? options)
                    (make-handle "peer-open" uid ip port options #f)
                    (make-handle-with "peer-open" uid ip port options))
                #f #f #f)))

(define option-keys '(replication data-dir republish expire))

(define (make-handle-with who uid ip port options)
  (define (value key default) (cond ((assq key options) => cdr) (else default)))
  (define (u32 key)
    (let ((v (value key 0)))
      (unless (and (exact-integer? v) (<= 0 v #xFFFFFFFF))
        (error (string-append who ": option " (symbol->string key)
                              " must be an exact integer in 0..4294967295")
               v))
      v))
  (when uid (check-bytes who "uid" uid 32))
  (check-ip who ip)
  (check-port who port)
  (unless (and (list? options)
               (let loop ((l options))
                 (or (null? l) (and (pair? (car l)) (memq (caar l) option-keys) (loop (cdr l))))))
    (error (string-append who ": options must be an integer (the replication) or an alist of"
                          " replication, data-dir, republish, expire")
           options))
  (let ((dir (value 'data-dir #f)))
    (unless (or (not dir) (and (string? dir) (not (memv #\null (string->list dir)))))
      (error (string-append who ": option data-dir must be a string without NUL characters") dir))
    (let* ((h (%peer-new-with uid ip port (u32 'replication) dir (u32 'republish) (u32 'expire)))
           (rc (%peer-glue-last-status))
           (detail (%peer-last-error)))
      (or h (status-error who rc detail)))))

(define (peer-close p)
  (unless (peer? p) (error "peer-close: not a peer" p))
  (let ((h (peer-handle p)))
    (when h
      (set-peer-handle! p #f)
      (%peer-close! h))))

(define (peer-port p)
  (let ((h (live-handle "peer-port" p)))
    (or (peer-ext-port p) (%peer-port h))))

(define (peer-uid p)
  (let ((h (live-handle "peer-uid" p)))
    (or (%peer-uid h) (error "peer-uid: cannot read the uid" p))))

;; Stop republishing what p stored under key: #t, or #f when nothing was.
(define (peer-forget p key)
  (let ((h (live-handle "peer-forget" p)))
    (check-bytes "peer-forget" "key" key 32)
    (finish "peer-forget" (%job-forget h key))))

;;; Network calls

(define (peer-connect p ip port)
  (let ((h (live-handle "peer-connect" p)))
    (check-ip "peer-connect" ip)
    (check-port "peer-connect" port)
    (let ((job (%job-connect h ip port)))
      (unless job (error "peer-connect: cannot start a thread for the call"))
      (await! job)
      (let ((rc (%job-status job)))
        (cond ((= rc 0) #t)
              ((= rc status-unreachable) #f)
              (else (status-error "peer-connect" rc (%job-error job))))))))

(define (peer-bootstrap p)
  (finish "peer-bootstrap" (%job-bootstrap (live-handle "peer-bootstrap" p)))
  (if #f #f))

(define (peer-set p value)
  (let ((h (live-handle "peer-set" p)))
    (unless (bytevector? value) (error "peer-set: value must be a bytevector" value))
    (when (> (bytevector-length value) peer-max-value-size)
      (error (string-append "peer-set: value too large: "
                            (number->string (bytevector-length value))
                            " bytes, the maximum is "
                            (number->string peer-max-value-size))))
    (finish "peer-set" (%job-set h value))))

(define (peer-ref p key)
  (let ((h (live-handle "peer-ref" p)))
    (check-bytes "peer-ref" "key" key 32)
    (finish "peer-ref" (%job-ref h key))))

(define (peer-bag-publish p key value)
  (let ((h (live-handle "peer-bag-publish" p)))
    (check-bytes "peer-bag-publish" "key" key 32)
    (check-bytes "peer-bag-publish" "value" value 32)
    (finish "peer-bag-publish" (%job-bag-publish h key value))
    (if #f #f)))

(define (bag-query who kind p uid key opt)
  (let ((h (live-handle who p))
        (cap (if (pair? opt) (car opt) 20)))
    (when uid (check-bytes who "uid" uid 32))
    (check-bytes who "key" key 32)
    (check-cap who cap)
    (or (finish who (%job-bag h kind uid key cap)) (vector))))

(define (peer-bag-popular p key . cap) (bag-query "peer-bag-popular" 0 p #f key cap))
(define (peer-bag-recent p key . cap) (bag-query "peer-bag-recent" 1 p #f key cap))
(define (peer-bag-sample p key . cap) (bag-query "peer-bag-sample" 2 p #f key cap))
(define (peer-bag-popular-at p uid key . cap) (bag-query "peer-bag-popular-at" 0 p uid key cap))
(define (peer-bag-recent-at p uid key . cap) (bag-query "peer-bag-recent-at" 1 p uid key cap))
(define (peer-bag-sample-at p uid key . cap) (bag-query "peer-bag-sample-at" 2 p uid key cap))

(define (peer-namespace-set p secret public key value)
  (let ((who "peer-namespace-set")
        (h (live-handle "peer-namespace-set" p)))
    (check-bytes who "secret key" secret 32)
    (check-bytes who "public key" public 32)
    (check-bytes who "key" key 32)
    (check-bytes who "value" value 32)
    (finish who (%job-namespace-set h secret public key value))))

(define (namespace-ref who p uid public key opt)
  (let ((h (live-handle who p))
        (sig (if (pair? opt) (car opt) #f)))
    (when uid (check-bytes who "uid" uid 32))
    (check-bytes who "public key" public 32)
    (check-bytes who "key" key 32)
    (when sig (check-bytes who "signature" sig 64))
    (finish who (%job-namespace-ref h uid public key sig))))

(define (peer-namespace-ref p public key . sig)
  (namespace-ref "peer-namespace-ref" p #f public key sig))

(define (peer-namespace-ref-at p uid public key . sig)
  (namespace-ref "peer-namespace-ref-at" p uid public key sig))

;;; Local helpers

(define (peer-keypair)
  (let ((pair (%peer-keypair)))
    (values (car pair) (cdr pair))))

(define (peer-random-uid) (%peer-random-uid))

(define (peer-wire-normalize text)
  (unless (string? text) (error "peer-wire-normalize: text must be a string" text))
  (let* ((res (%peer-wire-normalize (string->utf8 text)))
         (rc (%peer-glue-last-status))
         (detail (%peer-last-error)))
    (or res (status-error "peer-wire-normalize" rc detail))))
