;;; The program's transport: peers made by `peer`, whose envelopes the program moves.
;;;
;;; Envelopes are data both ways, converted in C (peer-envelope.c, where the reasons are):
;;; out, libpeer's canonical text becomes the datum handed to the program's `send`; in, what
;;; the program's `recv` returns is untrusted: walked (bounded), written as text and parsed by
;;; libpeer's safe reader (peer_ext_push). Anything refused on the way is dropped like a
;;; corrupt frame, silently. Nothing is evaluated.
;;;
;;; Who calls recv/send: a `thread`-mode peer is served by the library thread, a green
;;; thread that runs while any such peer lives; a `poll`-mode peer by the program, in
;;; peer-poll and while any blocking call of the library waits. One thread at a time moves a
;;; given peer's messages (its mutex), so a program's queues need no locks.

(define pump-batch 64)                    ; envelopes per direction per peer per round

;;; Moving one peer's envelopes

(define failed (list 'failed))            ; what a reported recv/send failure yields

;; Moves what waits for p now: up to `pump-batch` envelopes out to its `send`, then `recv`
;; up to `pump-batch` times until it has nothing; the number moved (dropped junk counts: it
;; was consumed). `report`: #f lets an exception from recv/send propagate (the program's
;; thread); else (report p direction object) handles it (the library thread), and the peer
;; goes on (a failed send is a lost message; a failed recv ends this peer's turn).
(define (pump-peer! p report)
  (define (call direction thunk)
    (if report
        (guard (e (#t (report p direction e) failed)) (thunk))
        (thunk)))
  (let out ((i 0) (moved 0))
    (let* ((h (and (< i pump-batch) (peer-handle p)))
           (m (and h (%ext-pop h))))
      (cond
       ((pair? m)                         ; (ip port envelope)
        (call 'send (lambda () ((peer-send p) (car m) (cadr m) (car (cddr m)))))
        (out (+ i 1) (+ moved 1)))
       ((symbol? m) (out (+ i 1) (+ moved 1))) ; text peer-envelope.c cannot follow: dropped
       (else                              ; #f (nothing waiting) or a status (closed)
        (let in ((i 0) (moved moved))
          (if (or (= i pump-batch) (not (peer-handle p)))
              moved
              (let ((x (call 'recv (peer-recv p))))
                (cond ((or (not x) (eof-object? x) (eq? x failed)) moved)
                      (else (push-envelope! p x) (in (+ i 1) (+ moved 1))))))))))))

;; Hands what `recv` returned to p's libpeer side; a refusal (malformed, closed) drops it.
(define (push-envelope! p x)
  (let ((h (peer-handle p)))
    (when h (%ext-push h x))))

;; Runs (thunk) holding p's mutex: waiting for it when `wait?`, else only if it is free
;; (then #f when another thread holds it).
(define (with-peer-lock p wait? thunk)
  (and (if wait? (mutex-lock! (peer-lock p)) (mutex-lock! (peer-lock p) 0))
       (dynamic-wind (lambda () #f) thunk (lambda () (mutex-unlock! (peer-lock p))))))

;;; The registry

;; Ephemerons keyed by the live external peers: the registry never keeps a peer alive, so an
;; unreachable one is still collected (and its handle freed by the finalizer).
(define *externals* '())

(define (register-external! p)
  (set! *externals* (cons (make-ephemeron p #t) *externals*))
  (when (eq? (peer-mode p) 'thread) (start-server!)))

;; The live external peers of `mode` (thread or poll); drops the dead from the registry.
(define (live-externals mode)
  (let loop ((es *externals*) (keep '()) (live '()))
    (if (null? es)
        (begin (set! *externals* (reverse keep)) (reverse live))
        (let ((p (ephemeron-key (car es))))
          (cond ((not (and p (not (ephemeron-broken? (car es))) (peer-handle p)))
                 (loop (cdr es) keep live))
                ((eq? (peer-mode p) mode) (loop (cdr es) (cons (car es) keep) (cons p live)))
                (else (loop (cdr es) (cons (car es) keep) live)))))))

;;; The program's thread: peer-poll, and the pumping of poll-mode peers by blocking calls

(define (peer-poll p)
  (unless (peer? p) (invalid peer-poll "not a peer" p))
  (unless (peer-mode p)
    (invalid peer-poll "not a peer on the program's transport (made by `peer`)" p))
  (live-handle peer-poll p)
  (with-peer-lock p #t (lambda () (pump-peer! p #f))))

;; One round over the poll-mode peers no other thread is moving: #t if anything moved. An
;; exception from their recv/send propagates (out of the blocking call that pumps).
(define (pump-poll-peers!)
  (let loop ((ps (if (null? *externals*) '() (live-externals 'poll))) (moved #f))
    (if (null? ps)
        moved
        (loop (cdr ps)
              (or (positive? (or (with-peer-lock (car ps) #f (lambda () (pump-peer! (car ps) #f)))
                                 0))
                  moved)))))

;;; The library thread

;; Back-off while a whole round moves nothing, in seconds: 50 us doubling to 5 ms.
(define min-pause 50e-6)
(define max-pause 5e-3)

(define *server* #f)                      ; the library thread, while it runs
(define *server-mutex* (make-mutex 'peer-server))
(define *server-wake* (make-condition-variable 'peer-server))
(define *server-kicked* #f)               ; a blocking call started: reset the back-off
(define *served* 0)                       ; envelopes the library thread moved (wraps)

(define (start-server!)
  (unless *server*
    (let ((t (make-thread serve-loop 'peer-server)))
      (set! *server* t)
      (thread-start! t))))

;; A blocking call is starting: its messages should move without the back-off's delay.
(define (kick-server!)
  (when *server*
    (set! *server-kicked* #t)
    (condition-variable-broadcast! *server-wake*)))

(define (serve-loop)
  (let loop ((pause min-pause))
    (let ((moved (guard (e (#t (write-string "peer: library thread: " (current-error-port))
                               (write-error-object e (current-error-port))
                               (newline (current-error-port))
                               0))
                   (serve-round!))))
      (cond
       ((not moved) #f)                   ; no thread-mode peer lives: the thread ends
       ((positive? moved)
        (set! *served* (modulo (+ *served* moved) 1000000))
        (loop min-pause))
       (else
        (mutex-lock! *server-mutex*)
        (if *server-kicked*
            (mutex-unlock! *server-mutex*)
            (mutex-unlock! *server-mutex* *server-wake* pause))
        (let ((kicked *server-kicked*))
          (set! *server-kicked* #f)
          (loop (if kicked min-pause (min max-pause (* 2 pause))))))))))

;; One round over the live thread-mode peers: how many envelopes moved, or #f when there are
;; none (then *server* is cleared in the same atomic step, so a peer made meanwhile starts a
;; new thread). The peers are held only during the round, never while the thread sleeps.
(define (serve-round!)
  (let ((ps (atomically
             (let ((ps (live-externals 'thread)))
               (when (null? ps) (set! *server* #f))
               ps))))
    (and (pair? ps)
         (let loop ((ps ps) (moved 0))
           (if (null? ps)
               moved
               (loop (cdr ps)
                     (+ moved (or (with-peer-lock (car ps) #f
                                    (lambda () (pump-peer! (car ps) report-failure!)))
                                  0))))))))

;; recv or send raised `e` on the library thread: every blocking call waiting on p raises it
;; (its failure box, see await!); when none waits, p's on-error gets it.
(define (report-failure! p direction e)
  (if (pair? (peer-waiting p))
      (for-each (lambda (box) (unless (vector-ref box 0) (vector-set! box 0 (list e))))
                (peer-waiting p))
      (guard (e2 (#t (guard (e3 (#t #f))
                       (write-string "peer: on-error raised: " (current-error-port))
                       (write-error-object e2 (current-error-port))
                       (newline (current-error-port))
                       (flush-output-port (current-error-port)))))
        (if (peer-on-error p)
            ((peer-on-error p) e)
            (default-on-error direction e)))))

;; on-error's default: one line on the current error port.
(define (default-on-error direction e)
  (let ((port (current-error-port)))
    (write-string (if (eq? direction 'recv) "peer: recv raised: " "peer: send raised: ") port)
    (write-error-object e port)
    (newline port)
    (flush-output-port port)))

(define (write-error-object e port)
  (cond ((error-object? e)
         (display (error-object-message e) port)
         (for-each (lambda (x) (write-char #\space port) (write x port))
                   (error-object-irritants e)))
        (else (write e port))))
