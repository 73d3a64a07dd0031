;;; (peer worker): run a blocking thunk on another thread while the calling thread polls,
;;; and let the caller leave as soon as something goes wrong.
;;;
;;; While external peers are served, a blocking libpeer call runs on a pooled thread: the
;;; calling thread meanwhile moves the messages of `poll`-mode peers, and it must be free to
;;; raise at once, either what the program's `recv`/`send` raised there or a failure the
;;; library thread reports for the call's peer (`call-fail!`). The C call cannot be
;;; interrupted, so the worker then finishes it alone, drops its result and returns itself
;;; to the pool. Creating a Guile thread costs ~0.3 ms, more than a local libpeer call, so
;;; the threads are pooled: one per concurrent call, each retiring after a while idle.

(define-module (peer worker)
  #:use-module (srfi srfi-9)
  #:use-module (ice-9 atomic)
  #:use-module (ice-9 threads)
  #:use-module (ice-9 exceptions)
  #:export (make-call call-fail! call-while-polling))

;; Polls that moved nothing before the caller starts sleeping between polls.
(define spin-rounds 64)
;; Longest sleep between two polls when nothing moves, in microseconds.
(define poll-interval-us 200)
;; Longest sleep when there is nothing to poll: only to notice peers made meanwhile.
(define idle-wait-us 10000)
;; An idle worker thread ends after this many seconds.
(define idle-seconds 10)

;;; A call: its outcome is set once, by whoever comes first: the worker ((value . v) or
;;; (raised . e)) or `call-fail!` ((failed . e)).

(define-record-type <call>
  (make-call* mutex cv state)
  call?
  (mutex call-mutex)
  (cv call-cv)
  (state call-state))                   ; atomic box: #f, then the outcome

(define (make-call) (make-call* (make-mutex) (make-condition-variable) (make-atomic-box #f)))

;; Set the outcome unless one is set already, and wake the caller.
(define (settle! call outcome)
  (when (not (atomic-box-compare-and-swap! (call-state call) #f outcome))
    (with-mutex (call-mutex call)
      (broadcast-condition-variable (call-cv call)))))

;; Make the caller of `call` raise `exception` now (the C call goes on, its result dropped).
(define (call-fail! call exception)
  (settle! call (cons 'failed exception)))

(define (deadline us)
  (let* ((now (gettimeofday))
         (usecs (+ (cdr now) us)))
    (cons (+ (car now) (quotient usecs 1000000)) (remainder usecs 1000000))))

;; Wait until `call` has an outcome, or at most `us` microseconds.
(define (wait-call call us)
  (let ((m (call-mutex call)))
    (with-mutex m
      (unless (atomic-box-ref (call-state call))
        (wait-condition-variable (call-cv call) m (deadline us))))))

;;; The pool

(define-record-type <worker>
  (make-worker* mutex cv job)
  worker?
  (mutex worker-mutex)
  (cv worker-cv)
  (job worker-job set-worker-job!))     ; (call . thunk) waiting to run, or #f

(define (make-worker) (make-worker* (make-mutex) (make-condition-variable) #f))

;; Idle workers; a worker is in this list exactly while it waits for a job.
(define pool-mutex (make-mutex))
(define idle '())

;; Out of the idle list, unless a caller has just taken this worker (then a job is coming).
(define (retire! w)
  (with-mutex pool-mutex
    (and (memq w idle)
         (begin (set! idle (delq! w idle)) #t))))

(define (next-job w)
  (let ((m (worker-mutex w)))
    (with-mutex m
      (let wait ()
        (cond ((worker-job w) => (lambda (job) (set-worker-job! w #f) job))
              ((wait-condition-variable (worker-cv w) m (deadline (* idle-seconds 1000000)))
               (wait))
              ((retire! w) #f)
              (else (wait)))))))

(define (run thunk)
  (with-exception-handler
      (lambda (e) (cons 'raised e))
    (lambda () (cons 'value (thunk)))
    #:unwind? #t))

(define (give-back! w)
  (with-mutex pool-mutex
    (set! idle (cons w idle))))

;; A call the compiler cannot see through (the variable is assigned, so never inlined).
(define keep-alive #f)
(set! keep-alive (lambda (x) x))

;; The worker settles each call itself and goes back to the pool: the caller may be gone.
;; The job's thunk holds the memory the C call reads and writes (the caller's scratch,
;; its bytevectors), so it is kept reachable until the call returns.
(define (worker-loop w)
  (let loop ()
    (let ((job (next-job w)))
      (when job
        (settle! (car job) (run (cdr job)))
        (keep-alive job)
        (give-back! w)
        (loop)))))

(define (take-worker!)
  (or (with-mutex pool-mutex
        (and (pair? idle)
             (let ((w (car idle)))
               (set! idle (cdr idle))
               w)))
      (let ((w (make-worker)))
        (call-with-new-thread (lambda () (worker-loop w)))
        w)))

(define (post! w job)
  (with-mutex (worker-mutex w)
    (set-worker-job! w job)
    (signal-condition-variable (worker-cv w))))

;; Run `thunk` on a pooled thread and return what it returns (or raise what it raised).
;; Meanwhile call `(poll)` on this thread: it returns how many things it moved, or #f when
;; there is nothing to poll. Whatever `poll` raises propagates at once, and so does the
;; exception given to `(call-fail! call e)`; the thunk then ends on its own (libpeer's calls
;; all have timeouts) and its result is dropped.
(define (call-while-polling call thunk poll)
  (post! (take-worker!) (cons call thunk))
  (let loop ((quiet 0))
    (let ((state (atomic-box-ref (call-state call))))
      (if state
          (if (eq? (car state) 'value)
              (cdr state)
              (raise-exception (cdr state)))
          (let ((moved (poll)))
            (cond ((not moved) (wait-call call idle-wait-us) (loop quiet))
                  ((> moved 0) (loop 0))
                  ((< quiet spin-rounds) (yield) (loop (+ quiet 1)))
                  (else (wait-call call poll-interval-us) (loop quiet))))))))
