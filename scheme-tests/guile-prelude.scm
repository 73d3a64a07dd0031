;;; Guile's prelude for the shared suite (scheme-tests/suite-files): the library and the
;;; helpers the suite expects (see the head of suite.scm). Loaded by run-guile.sh before the
;;; suite, and by guile-child-prelude.scm in the suite's child process.

(use-modules (peer)
             (rnrs bytevectors)                 ; bytevector-u8-ref & co. are not core
             (ice-9 exceptions)                 ; R7RS-style `guard`
             (srfi srfi-9)                      ; define-record-type
             (ice-9 popen))                     ; open-pipe*: fork and exec in C

(define (bytevector-from-list lst) (u8-list->bytevector lst))
(define (bv-copy bv) (bytevector-copy bv))
(define (string->utf8* s) (string->utf8 s))
(define (exit-with-failures n) (exit (if (zero? n) 0 1)))
;; A path in the run's own temporary directory (run-guile.sh sets PEER_TEST_DIR).
(define (temp-path name)
  (let ((dir (getenv "PEER_TEST_DIR")))
    (unless dir (error "PEER_TEST_DIR is not set (run the suite with run-guile.sh)"))
    (string-append dir "/" name)))
(define (sleep-ms ms) (usleep (* ms 1000)))

;; R7RS `raise`: Guile's core `raise` sends a signal to the process.
(define raise raise-exception)

(define (write-to-string datum)
  (call-with-output-string (lambda (port) (write datum port))))

;; Guile reads both R7RS #u8(...) and R6RS #vu8(...): plain `read` does.
(define (read-wire text)
  (call-with-input-string text read))

;; What Guile prints for `e` raised and not caught (without the frame's location), e.g.
;; "In procedure peer-open: invalid argument: ...".
(define (printed-error e)
  (string-trim-right
   (call-with-output-string
     (lambda (port) (print-exception port #f (exception-kind e) (exception-args e))))))

;; An error as Guile shows it: its printed form, which names the procedure.
(define (error-text e) (printed-error e))

;;; ---------------------------------------------------------------------------------------
;;; Channels between this process and a child: a TCP socket on 127.0.0.1, datums written
;;; one per line. `pipe` and `pid` are the child's (#f on the child's side).

(define-record-type <channel>
  (make-channel port pipe pid)
  channel?
  (port channel-port)
  (pipe channel-pipe)
  (pid channel-pid))

(define (socket-port! s)
  (set-port-encoding! s "UTF-8")
  (setvbuf s 'block 65536)
  s)

(define (channel-send! ch datum)
  (let ((port (channel-port ch)))
    (write datum port)
    (newline port)
    (force-output port)))

;; A datum when one has arrived, else #f at once; #f at the end too. The peer writes each
;; datum whole with its newline, so once its first character is here `read` ends soon.
(define (channel-recv ch)
  (let ((port (channel-port ch)))
    (let skip ()
      (and (char-ready? port)
           (let ((c (peek-char port)))
             (cond ((eof-object? c) #f)
                   ((char-whitespace? c) (read-char port) (skip))
                   (else (let ((x (read port))) (and (not (eof-object? x)) x)))))))))

;; Close the channel; on the parent's side wait for the child, at most 10 s before killing
;; it. #t when it exited with status 0 (the child's side: always #t).
(define (channel-close! ch)
  (close-port (channel-port ch))
  (let ((pid (channel-pid ch)))
    (or (not pid)
        (let loop ((i 0))
          (let ((done (waitpid pid WNOHANG)))
            (cond ((not (zero? (car done)))
                   (close-port (channel-pipe ch))
                   (eqv? (status:exit-val (cdr done)) 0))
                  ((< i 200) (sleep-ms 50) (loop (+ i 1)))
                  (else (kill pid SIGKILL)
                        (waitpid pid)
                        (close-port (channel-pipe ch))
                        #f)))))))

;; The child: this Guile with the same load path on scheme-tests/child.scm, after
;; guile-child-prelude.scm, given the port to connect to. run-guile.sh exports the paths.
(define (spawn-child)
  (let ((listener (socket PF_INET SOCK_STREAM 0))
        (tests (getenv "PEER_GUILE_TESTS")))
    (unless tests (error "PEER_GUILE_TESTS is not set (run the suite with run-guile.sh)"))
    (dynamic-wind
      (lambda () #f)
      (lambda ()
        (bind listener AF_INET (inet-pton AF_INET "127.0.0.1") 0)
        (listen listener 1)
        (let* ((port (sockaddr:port (getsockname listener)))
               ;; open-pipe* forks and execs in C (piped-process): no Scheme runs between
               ;; the two in this process with threads. OPEN_READ: the child's stdout comes
               ;; here, unread (the child writes nothing there); its port reaps nothing, so
               ;; the pid is waited for by channel-close!.
               (pipe (open-pipe* OPEN_READ (or (getenv "GUILE") "guile") "--no-auto-compile"
                                 "-L" (getenv "PEER_GUILE_LIB") "-C" (getenv "PEER_GUILE_GO")
                                 "-l" (string-append tests "/guile-child-prelude.scm")
                                 (string-append tests "/child.scm") (number->string port)))
               (pid (hashq-ref port/pid-table pipe)))
          ;; At most 30 s for the child to start and connect.
          (if (null? (car (select (list listener) '() '() 30)))
              (begin (kill pid SIGKILL) (waitpid pid) (close-port pipe)
                     (error "spawn-child: the child did not connect"))
              (make-channel (socket-port! (car (accept listener))) pipe pid))))
      (lambda () (close-port listener)))))
