;;; The procedures programs call, over the %-prefixed stubs of peer.stub.
;;;
;;; A peer is a record holding the stub's handle (#f once closed). Blocking calls start a job
;;; on a pthread (peer-glue.c) and the calling green thread waits for it in short slices, so
;;; other green threads (the library thread among them), the collector and the poll-mode
;;; peers (pumped between slices) keep running.

(define-record-type <peer>
  (%make-peer handle recv send mode on-error lock waiting)
  peer?
  (handle peer-handle set-peer-handle!)   ; stub handle, #f once closed
  (recv peer-recv)                        ; program's transport: its thunk, else #f
  (send peer-send)                        ; program's transport: (send ip port envelope)
  (mode peer-mode)                        ; thread, poll, or #f for a TCP peer
  (on-error peer-on-error)                ; thread mode: (on-error e), #f for the default
  (lock peer-lock)                        ; held by whoever moves this peer's envelopes
  (waiting peer-waiting set-peer-waiting!)) ; failure boxes of the blocking calls on it

(define peer-max-value-size (%peer-max-value-size))
(define peer-max-external-value-size (%peer-max-external-value-size))

(define (live-handle who p)
  (unless (peer? p) (invalid who "not a peer" p))
  (or (peer-handle p)
      (let ((closed (status-code 'closed)))
        (raise-peer-error who 'closed (%peer-strerror closed) '()))))

;;; Blocking calls

;; The caller waits in slices: at most `wait` microseconds inside C (woken at once when the
;; call ends, so a quick call costs no polling delay), then a yield to the other green
;; threads (the library thread among them) and a round over the poll-mode peers. Slices
;; double while nothing moves, up to a millisecond, so a long call costs little CPU, and
;; shrink back whenever envelopes move (here or on the library thread), so a busy exchange
;; is not held up. When other green threads need the time (several waiting for calls, or the
;; library thread serving), a C wait would hold them up (and hide their ends), so the caller
;; sleeps in the scheduler (thread-sleep!) instead.
(define min-wait 50)
(define max-wait 1000)
(define waiters 0)                        ; green threads inside await!

;; Between slices the caller looks at its failure box: the library thread puts there what a
;; thread-mode peer's recv/send raised while this call waited on that peer, raised here at
;; once. A poll-mode peer's exception propagates from pump-poll-peers! directly. Either way
;; the libpeer call goes on on its pthread and its result is dropped.
(define (await! p job)
  (define box (vector #f))
  ;; The first slice is always in C: a quick call (a local one) ends within it, without a
  ;; yield or a round of pumping.
  (define (slice-done? wait first?)
    (if (and (not first?) (or (> waiters 1) *server*))
        (begin (thread-sleep! (/ wait 1e6)) (%job-done? job))
        (%job-wait job wait)))
  (define (check-failure!)
    (let ((failure (vector-ref box 0)))
      (when failure (raise (car failure)))))
  (dynamic-wind
   (lambda ()
     (set! waiters (+ waiters 1))
     (set-peer-waiting! p (cons box (peer-waiting p))))
   (lambda ()
     (kick-server!)
     (let loop ((wait min-wait) (served *served*) (first? #t))
       (unless (slice-done? wait first?)
         (check-failure!)
         (thread-yield!)
         (check-failure!)
         (let ((moved (pump-poll-peers!)))
           (loop (if (or moved (not (= served *served*))) min-wait (min max-wait (* 2 wait)))
                 *served*
                 #f)))))
   (lambda ()
     (set! waiters (- waiters 1))
     (set-peer-waiting! p (remove-box box (peer-waiting p))))))

(define (remove-box box boxes)
  (cond ((null? boxes) '())
        ((eq? (car boxes) box) (cdr boxes))
        (else (cons (car boxes) (remove-box box (cdr boxes))))))

(define (start-job who job)
  (or job (raise-peer-error who 'os "cannot start a thread for the call" '())))

;; Runs a started job on p to completion: its result, or #f for "not found".
(define (finish who p job)
  (await! p (start-job who job))
  (let ((rc (%job-status job)))
    (cond ((= rc 0) (%job-result job))
          ((= rc status-not-found) #f)
          ;; The reason was read on the call's own pthread and kept in the job.
          (else (status-error who rc (%job-error job))))))

;;; Construction and life cycle

(define transport-keys '(ip port serve on-error))

;; The draft's form: a peer on the program's transport. Options: an alist of ip and port
;; (both or neither: neither derives the address from the uid), serve (thread or poll) and
;; on-error.
(define (peer uid recv send replication . opt)
  (check-bytes peer "uid" uid 32)
  (unless (procedure? recv) (invalid peer "recv must be a procedure" recv))
  (unless (procedure? send) (invalid peer "send must be a procedure" send))
  (check-replication peer replication)
  (when (and (pair? opt) (pair? (cdr opt))) (invalid peer "too many arguments" (cdr opt)))
  (let* ((options (if (pair? opt) (car opt) '()))
         (_ (check-alist peer options transport-keys))
         (ip (option options 'ip #f))
         (port (option options 'port #f))
         (mode (option options 'serve 'thread))
         (on-error (option options 'on-error #f)))
    (unless (eq? (not ip) (not port)) (invalid peer "give both ip and port, or neither" options))
    (when ip (check-host peer ip) (check-port peer port))
    (unless (memq mode '(thread poll)) (invalid peer "serve must be thread or poll" mode))
    (unless (or (not on-error) (procedure? on-error))
      (invalid peer "on-error must be a procedure" on-error))
    (let* ((h (direct-call peer %peer-new uid ip (or port 0) replication #t))
           (p (%make-peer h recv send mode on-error (make-mutex 'peer) '())))
      (register-external! p)
      p)))

(define (check-alist who options keys)
  (unless (and (list? options)
               (let loop ((l options))
                 (or (null? l)
                     (and (pair? (car l)) (memq (caar l) keys) (loop (cdr l))))))
    (invalid who "options must be an alist with keys among" options keys)))

(define (option options key default)
  (cond ((assq key options) => cdr) (else default)))

;; The optional 4th argument: the replication (an integer), or an alist of options
;; (replication, data-dir, republish, expire, address-limits) for peer_new_with; then uid may
;; be #f.
(define (peer-open uid ip port . opt)
  (when (and (pair? opt) (pair? (cdr opt))) (invalid peer-open "too many arguments" (cdr opt)))
  (let ((options (if (pair? opt) (car opt) 5)))
    (%make-peer (if (number? options)
                    (make-tcp-handle uid ip port options)
                    (make-tcp-handle-with uid ip port options))
                #f #f #f #f #f '())))

(define (make-tcp-handle uid ip port replication)
  (check-bytes peer-open "uid" uid 32)
  (check-host peer-open ip)
  (check-port peer-open port)
  (check-replication peer-open replication)
  (direct-call peer-open %peer-new uid ip port replication #f))

(define open-keys '(replication data-dir republish expire address-limits))

;; address-limits' symbols and their C codes (struct peer_options' address_limits).
(define address-limits-codes '((default . 0) (strict . 1) (off . 2)))

(define (make-tcp-handle-with uid ip port options)
  (define (u32 key)
    (let ((v (option options key 0)))
      (unless (and (exact-integer? v) (<= 0 v #xFFFFFFFF))
        (invalid peer-open (string-append "option " (symbol->string key)
                                          " must be an exact integer in 0..4294967295")
                 v))
      v))
  (when uid (check-bytes peer-open "uid" uid 32))
  (check-host peer-open ip)
  (check-port peer-open port)
  (check-alist peer-open options open-keys)
  (let ((dir (option options 'data-dir #f))
        (replication (option options 'replication 0))
        (limits (option options 'address-limits 'default)))
    (unless (or (not dir) (and (string? dir) (not (string-index dir #\null))))
      (invalid peer-open "option data-dir must be a string without NUL characters" dir))
    (check-replication peer-open replication)
    (let ((republish (u32 'republish))
          (expire (u32 'expire))
          (limits-code (cond ((assq limits address-limits-codes) => cdr) (else #f))))
      (unless limits-code
        (invalid peer-open "option address-limits must be default, strict or off" limits))
      (direct-call peer-open %peer-new-with uid ip port replication dir republish expire
                   limits-code))))

(define (peer-close p)
  (define (close!)
    (let ((h (peer-handle p)))
      (when h
        (set-peer-handle! p #f)
        (%peer-close! h))))
  (unless (peer? p) (invalid peer-close "not a peer" p))
  ;; An external peer closes under its lock, so no thread is in (or enters) its recv/send
  ;; once this returns: the program may then close their channel. From within its own
  ;; recv/send (this thread holds the lock) it closes at once.
  (if (and (peer-mode p) (not (eq? (mutex-state (peer-lock p)) (current-thread))))
      (with-peer-lock p #t close!)
      (close!)))

;; (ip . port): a TCP peer's bound address, an external peer's address on the program's net.
(define (address who p)
  (let ((a (%peer-address (live-handle who p))))
    (if (pair? a) a (status-error who a ""))))

(define (peer-port p)                     ; peer_port: the same port, without allocating
  (let ((port (%peer-port (live-handle peer-port p))))
    (if (> port 0) port (cdr (address peer-port p)))))
(define (peer-ip p) (car (address peer-ip p)))

;; peer_stats_list as ((contacts . 12) (values . 3) ...): its names as symbols, in its order.
;; A quick local call, made directly (no job, no pumping).
(define (peer-stats p)
  (direct-call peer-stats %peer-stats (live-handle peer-stats p)))

(define (peer-uid p)
  (or (%peer-uid (live-handle peer-uid p))
      (status-error peer-uid (status-code 'closed) "")))

;; Stop republishing what p stored under key: #t, or #f when nothing was.
(define (peer-forget p key)
  (let ((h (live-handle peer-forget p)))
    (check-bytes peer-forget "key" key 32)
    (finish peer-forget p (%job-forget h key))))

;;; Network calls

;; #t, or #f when nobody answered at host:port or the name does not resolve.
(define (peer-connect p host port)
  (let ((h (live-handle peer-connect p)))
    (check-host peer-connect host)
    (check-port peer-connect port)
    (let ((job (start-job peer-connect (%job-connect h host port))))
      (await! p job)
      (let ((rc (%job-status job)))
        (cond ((= rc 0) #t)
              ((= rc status-unreachable) #f)
              (else (status-error peer-connect rc (%job-error job))))))))

(define (peer-bootstrap p)
  (finish peer-bootstrap p (%job-bootstrap (live-handle peer-bootstrap p)))
  (if #f #f))

;; libpeer checks the size (peer-max-value-size; on the program's transport
;; peer-max-external-value-size): too-large.
(define (peer-set p value)
  (let ((h (live-handle peer-set p)))
    (unless (bytevector? value) (invalid peer-set "value must be a bytevector" value))
    (finish peer-set p (%job-set h value))))

(define (peer-ref p key)
  (let ((h (live-handle peer-ref p)))
    (check-bytes peer-ref "key" key 32)
    (finish peer-ref p (%job-ref h key))))

(define (peer-bag-publish p key value)
  (let ((h (live-handle peer-bag-publish p)))
    (check-bytes peer-bag-publish "key" key 32)
    (check-bytes peer-bag-publish "value" value 32)
    (finish peer-bag-publish p (%job-bag-publish h key value))
    (if #f #f)))

(define (bag-query who kind p uid key opt)
  (let ((h (live-handle who p))
        (cap (if (pair? opt) (car opt) 20)))
    (when uid (check-bytes who "uid" uid 32))
    (check-bytes who "key" key 32)
    (check-cap who cap)
    (or (finish who p (%job-bag h kind uid key cap)) (vector))))

(define (peer-bag-popular p key . cap) (bag-query peer-bag-popular 0 p #f key cap))
(define (peer-bag-recent p key . cap) (bag-query peer-bag-recent 1 p #f key cap))
(define (peer-bag-sample p key . cap) (bag-query peer-bag-sample 2 p #f key cap))
(define (peer-bag-popular-at p uid key . cap) (bag-query peer-bag-popular-at 0 p uid key cap))
(define (peer-bag-recent-at p uid key . cap) (bag-query peer-bag-recent-at 1 p uid key cap))
(define (peer-bag-sample-at p uid key . cap) (bag-query peer-bag-sample-at 2 p uid key cap))

(define (peer-namespace-set p secret public key value)
  (let ((who peer-namespace-set)
        (h (live-handle peer-namespace-set p)))
    (check-bytes who "secret key" secret 32)
    (check-bytes who "public key" public 32)
    (check-bytes who "key" key 32)
    (check-bytes who "value" value 32)
    (finish who p (%job-namespace-set h secret public key value))))

(define (namespace-ref who p uid public key opt)
  (let ((h (live-handle who p))
        (sig (if (pair? opt) (car opt) #f)))
    (when uid (check-bytes who "uid" uid 32))
    (check-bytes who "public key" public 32)
    (check-bytes who "key" key 32)
    (when sig (check-bytes who "signature" sig 64))
    (finish who p (%job-namespace-ref h uid public key sig))))

(define (peer-namespace-ref p public key . sig)
  (namespace-ref peer-namespace-ref p #f public key sig))

(define (peer-namespace-ref-at p uid public key . sig)
  (namespace-ref peer-namespace-ref-at p uid public key sig))

;;; Local helpers

(define (peer-keypair)
  (let ((pair (%peer-keypair)))
    (values (car pair) (cdr pair))))

(define (peer-random-uid) (%peer-random-uid))

(define (peer-wire-normalize text)
  (unless (string? text) (invalid peer-wire-normalize "text must be a string" text))
  (direct-call peer-wire-normalize %peer-wire-normalize (string->utf8 text)))

;; The names peer-error-who gives (see peer-error.scm).
(set! exported-procedures
      (list (cons peer 'peer) (cons peer-open 'peer-open) (cons peer-close 'peer-close)
            (cons peer-port 'peer-port) (cons peer-ip 'peer-ip) (cons peer-uid 'peer-uid)
            (cons peer-stats 'peer-stats)
            (cons peer-forget 'peer-forget) (cons peer-connect 'peer-connect)
            (cons peer-bootstrap 'peer-bootstrap) (cons peer-set 'peer-set)
            (cons peer-ref 'peer-ref) (cons peer-poll 'peer-poll)
            (cons peer-bag-publish 'peer-bag-publish)
            (cons peer-bag-popular 'peer-bag-popular) (cons peer-bag-recent 'peer-bag-recent)
            (cons peer-bag-sample 'peer-bag-sample)
            (cons peer-bag-popular-at 'peer-bag-popular-at)
            (cons peer-bag-recent-at 'peer-bag-recent-at)
            (cons peer-bag-sample-at 'peer-bag-sample-at)
            (cons peer-namespace-set 'peer-namespace-set)
            (cons peer-namespace-ref 'peer-namespace-ref)
            (cons peer-namespace-ref-at 'peer-namespace-ref-at)
            (cons peer-wire-normalize 'peer-wire-normalize)
            (cons peer-error-who 'peer-error-who) (cons peer-error-symbol 'peer-error-symbol)
            (cons peer-error-status 'peer-error-status)
            (cons peer-error-message 'peer-error-message)))
