;; Chez prelude of the shared Scheme suite. run-chez.sh runs
;;   scheme --libdirs bindings/chez --script scheme-tests/chez-prelude.ss scheme-tests/suite.scm
;; This file makes (peer) and the helper names the suite expects (COMMON.md) available at
;; top level, supplies the few R7RS names Chez 9.5 (an R6RS system) lacks, then loads the
;; files named on the command line into that one top level: the suite's files, or in a child
;; process child.scm (then chez-child-prelude.ss loads this file).
(import (chezscheme) (peer) (peer error))

(define (bytevector-from-list lst) (u8-list->bytevector lst))
(define (bv-copy bv) (bytevector-copy bv))
(define (string->utf8* s) (string->utf8 s))
(define (exit-with-failures n)
  (flush-output-port (current-output-port))
  (exit (if (eqv? n 0) 0 1)))

;; The suite's helpers for its conformance part and its failure messages.
(define (write-to-string datum)
  (call-with-string-output-port (lambda (port) (write datum port))))
;; What Chez prints for a raised object: "Exception in peer-open: invalid argument: ...".
(define (printed-error e)
  (call-with-string-output-port (lambda (port) (display-condition e port))))
(define (error-text e)                  ; who, message and irritants, as Chez prints them
  (if (condition? e) (printed-error e) (format "~s" e)))

;; R7RS `error` takes (message irritant ...); R6RS's takes a `who` first.
(define (error message . irritants)
  (raise (condition (make-error)
                    (make-message-condition
                      (if (string? message) message (format "~s" message)))
                    (make-irritants-condition irritants))))
(define (error-object? x) (condition? x))
(define (error-object-message e)
  (if (message-condition? e) (condition-message e) ""))
(define (error-object-irritants e)
  (if (irritants-condition? e) (condition-irritants e) '()))
(define (exact-integer? x) (and (integer? x) (exact? x)))

;; A path in the run's own temporary directory (run-chez.sh sets PEER_TEST_DIR).
(define (temp-path name)
  (let ([dir (getenv "PEER_TEST_DIR")])
    (unless dir (error "PEER_TEST_DIR is not set (run the suite with run-chez.sh)"))
    (string-append dir "/" name)))
(define (sleep-ms ms)
  (sleep (make-time 'time-duration (* (mod ms 1000) 1000000) (div ms 1000))))

;; Chez 9.5's reader knows only R6RS `#vu8(`, while libpeer (and R7RS) write `#u8(`.
;; Rewrite `#u8(` to `#vu8(` outside string literals, character literals and line comments
;; (a `"` inside a block comment would confuse it; the suite has none).
(define (r7rs->r6rs-text text)
  (let ([n (string-length text)] [out (open-output-string)])
    (define (at? i s)
      (and (<= (+ i (string-length s)) n) (string=? (substring text i (+ i (string-length s))) s)))
    (let loop ([i 0])
      (cond
        [(>= i n) (get-output-string out)]
        [(at? i "#u8(") (put-string out "#vu8(") (loop (+ i 4))]
        [(at? i "#\\")                      ; a character literal: copy `#\` and one char
         (put-string out (substring text i (min n (+ i 3)))) (loop (+ i 3))]
        [(char=? (string-ref text i) #\;)   ; a line comment
         (let skip ([j i])
           (if (or (>= j n) (char=? (string-ref text j) #\newline))
               (begin (put-string out (substring text i j)) (loop j))
               (skip (+ j 1))))]
        [(char=? (string-ref text i) #\")   ; a string literal, escapes included
         (let skip ([j (+ i 1)])
           (cond
             [(>= j n) (put-string out (substring text i n)) (loop n)]
             [(char=? (string-ref text j) #\\) (skip (+ j 2))]
             [(char=? (string-ref text j) #\")
              (put-string out (substring text i (+ j 1))) (loop (+ j 1))]
             [else (skip (+ j 1))]))]
        [else (put-char out (string-ref text i)) (loop (+ i 1))]))))

;; (read-wire text) -> the datum of one message text as libpeer writes it.
(define (read-wire text)
  (read (open-input-string (r7rs->r6rs-text text))))

;; ---- a child process and its channel ------------------------------------------------
;; Chez 9.5 has no sockets: the channel is the child's standard input and output
;; (open-process-ports), one datum per line. The child's standard error goes to a file in
;; the run's directory, copied to ours when the channel closes (a pipe nobody drains could
;; block the child).

;; in, out: textual ports; pid, err-file: #f in the child (its parent-channel).
(define-record-type channel (fields in out pid err-file))

(define channel-transcoder
  (make-transcoder (utf-8-codec) (eol-style lf) (error-handling-mode raise)))

(define scheme-tests-dir (path-parent (car (command-line))))
(define children 0)

(define (shell-quote s)
  (string-append "'" (let loop ([cs (string->list s)] [acc ""])
                       (cond [(null? cs) acc]
                             [(char=? (car cs) #\') (loop (cdr cs) (string-append acc "'\\''"))]
                             [else (loop (cdr cs) (string-append acc (string (car cs))))]))
                 "'"))

;; A new Chez process running scheme-tests/child.scm after chez-child-prelude.ss, with the
;; same (peer) library; LIBPEER_DIR and PEER_TEST_DIR are inherited.
(define (spawn-child)
  (set! children (+ children 1))
  (let ([err-file (temp-path (format "chez-child-~a.err" children))]
        [root (path-parent scheme-tests-dir)])
    (let-values ([(to-child from-child from-err pid)
                  (open-process-ports
                    (format "exec ~a --libdirs ~a --script ~a ~a 2>~a"
                      (shell-quote (or (getenv "CHEZ") "scheme"))
                      (shell-quote (string-append root "/bindings/chez"))
                      (shell-quote (string-append scheme-tests-dir "/chez-child-prelude.ss"))
                      (shell-quote (string-append scheme-tests-dir "/child.scm"))
                      (shell-quote err-file))
                    (buffer-mode block) channel-transcoder)])
      (close-port from-err)
      (make-channel from-child to-child pid err-file))))

(define (channel-send! ch datum)
  (let ([out (channel-out ch)])
    (write datum out)
    (newline out)
    (flush-output-port out)))

;; The next datum when one has arrived, else #f (also at end of file); never waits for one.
(define (channel-recv ch)
  (let ([in (channel-in ch)])
    (let skip ()
      (and (input-port-ready? in)
           (let ([c (peek-char in)])
             (cond [(eof-object? c) #f]
                   [(char-whitespace? c) (read-char in) (skip)]
                   [else (let ([d (read in)]) (and (not (eof-object? d)) d))]))))))

(load-shared-object "libc.so.6")
(define %waitpid (foreign-procedure "waitpid" (int u8* int) int))
(define %kill (foreign-procedure "kill" (int int) int))
(define wnohang 1)
(define sigkill 9)

;; -> the child's wait status once it has exited, polling for up to `ms`; else #f.
(define (wait-child pid ms)
  (let ([status (make-bytevector 4 0)])
    (let loop ([left ms])
      (cond [(= (%waitpid pid status wnohang) pid) (bytevector-s32-native-ref status 0)]
            [(<= left 0) #f]
            [else (sleep-ms 10) (loop (- left 10))]))))

;; Closes the channel and waits for the child (at most ~10 s, then kills it): #t when it
;; exited with status 0. Its standard error is copied to ours. In the child: #t.
(define (channel-close! ch)
  (close-port (channel-out ch))
  (if (channel-pid ch)
      (close-child! ch)
      (begin (close-port (channel-in ch)) #t)))

(define (close-child! ch)
  (let* ([in (channel-in ch)]
         [pid (channel-pid ch)]
         [status (let loop ([left 10000])
                   ;; Drain what it still writes, so a full pipe cannot hold up its exit.
                   (let drain ([k 0])
                     (when (and (< k 65536) (input-port-ready? in)
                                (not (eof-object? (read-char in))))
                       (drain (+ k 1))))
                   (or (wait-child pid 0)
                       (and (> left 0) (begin (sleep-ms 10) (loop (- left 10))))))]
         [status (or status (begin (%kill pid sigkill) (wait-child pid 1000) #f))])
    (close-port in)
    (let ([text (guard (e (#t "")) (call-with-input-file (channel-err-file ch) get-string-all))])
      (unless (or (eof-object? text) (string=? text ""))
        (put-string (current-error-port) text)
        (flush-output-port (current-error-port))))
    (eqv? status 0)))                       ; exited (not signalled), with status 0

;; Load each file named on the command line; one holding `#u8(` literals through the
;; rewrite above.
(for-each
  (lambda (path)
    (let* ([text (call-with-input-file path get-string-all)]
           [r6 (r7rs->r6rs-text text)])
      (if (string=? r6 text)
          (load path)
          (let ([in (open-input-string r6)])
            (let loop ()
              (let ([d (read in)])
                (unless (eof-object? d)
                  (eval d (interaction-environment))
                  (loop))))))))
  (cdr (command-line)))
