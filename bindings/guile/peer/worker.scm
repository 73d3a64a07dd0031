;;; (peer worker): run a blocking thunk on another thread while the calling thread polls.
;;;
;;; The external transport of (peer) needs the thread making a blocking libpeer call to keep
;;; moving messages until that call returns, so the call itself runs elsewhere. Creating a
;;; Guile thread costs ~0.3 ms, more than a local libpeer call, so the threads are pooled:
;;; one per concurrently calling thread, each retiring after a while without work. While it
;;; waits the caller polls; when a poll moves nothing it yields a few times (replies from
;;; libpeer's threads come within microseconds), then sleeps on the worker's condition
;;; variable, which the worker signals as soon as the call returns.

(define-module (peer worker)
  #:use-module (srfi srfi-9)
  #:use-module (ice-9 atomic)
  #:use-module (ice-9 threads)
  #:use-module (ice-9 exceptions)
  #:export (call-while-polling))

;; Polls that moved nothing before the caller starts sleeping between polls.
(define spin-rounds 64)
;; Longest sleep between two polls when nothing moves, in microseconds.
(define poll-interval-us 200)
;; An idle worker thread ends after this many seconds.
(define idle-seconds 10)

(define-record-type <worker>
  (make-worker* mutex job-cv done-cv job result done)
  worker?
  (mutex worker-mutex)
  (job-cv worker-job-cv)
  (done-cv worker-done-cv)
  (job worker-job set-worker-job!)          ; a thunk waiting to run, or #f
  (result worker-result set-worker-result!) ; (value . v) or (raised . exception)
  (done worker-done))                       ; atomic box: the posted job has finished

(define (make-worker)
  (make-worker* (make-mutex) (make-condition-variable) (make-condition-variable)
                #f #f (make-atomic-box #t)))

;; Idle workers; a worker is in this list exactly while it waits for a job.
(define pool-mutex (make-mutex))
(define idle '())

(define (deadline us)
  (let* ((now (gettimeofday))
         (usecs (+ (cdr now) us)))
    (cons (+ (car now) (quotient usecs 1000000)) (remainder usecs 1000000))))

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
              ((wait-condition-variable (worker-job-cv w) m (deadline (* idle-seconds 1000000)))
               (wait))
              ((retire! w) #f)
              (else (wait)))))))

(define (run job)
  (with-exception-handler
      (lambda (e) (cons 'raised e))
    (lambda () (cons 'value (job)))
    #:unwind? #t))

(define (worker-loop w)
  (let loop ()
    (let ((job (next-job w)))
      (when job
        (let ((result (run job)))
          (with-mutex (worker-mutex w)
            (set-worker-result! w result)
            (atomic-box-set! (worker-done w) #t)
            (signal-condition-variable (worker-done-cv w))))
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

(define (give-back! w)
  (with-mutex pool-mutex
    (set! idle (cons w idle))))

(define (post! w job)
  (with-mutex (worker-mutex w)
    (atomic-box-set! (worker-done w) #f)
    (set-worker-job! w job)
    (signal-condition-variable (worker-job-cv w))))

;; Wait until the job is done, or at most `us` microseconds when `us` is a number.
(define (wait-done w us)
  (let ((m (worker-mutex w)))
    (with-mutex m
      (let wait ()
        (unless (atomic-box-ref (worker-done w))
          (if us
              (wait-condition-variable (worker-done-cv w) m (deadline us))
              (begin (wait-condition-variable (worker-done-cv w) m) (wait))))))))

;; Poll until the job is done; returns #f, or what `poll` raised (polling then stops).
(define (poll-until-done w poll)
  (let loop ((quiet 0))
    (if (atomic-box-ref (worker-done w))
        #f
        (let ((moved (with-exception-handler
                         (lambda (e) (cons 'raised e))
                       poll
                       #:unwind? #t)))
          (cond ((pair? moved) (cdr moved))
                ((> moved 0) (loop 0))
                ((< quiet spin-rounds) (yield) (loop (+ quiet 1)))
                (else (wait-done w poll-interval-us) (loop quiet)))))))

;; Run `thunk` on a pooled thread; meanwhile call `(poll)` on this thread, which returns how
;; many things it moved. Returns what `thunk` returns, or raises what it raised. If `poll`
;; raises, polling stops, the thunk is still waited for, and then that exception is raised:
;; the thunk must end on its own (libpeer's calls all have timeouts).
(define (call-while-polling thunk poll)
  (let ((w (take-worker!)))
    (post! w thunk)
    (let ((failure (poll-until-done w poll)))
      (when failure (wait-done w #f))
      (let ((result (worker-result w)))
        (set-worker-result! w #f)
        (give-back! w)
        (cond (failure (raise-exception failure))
              ((eq? (car result) 'raised) (raise-exception (cdr result)))
              (else (cdr result)))))))
