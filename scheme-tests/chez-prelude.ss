;; Chez prelude of the shared Scheme suite. run-chez.sh runs
;;   scheme --libdirs bindings/chez --script scheme-tests/chez-prelude.ss scheme-tests/suite.scm
;; This file makes (peer) and the helper names the suite expects (COMMON.md) available at
;; top level, supplies the few R7RS names Chez 9.5 (an R6RS system) lacks, then loads the suite.
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
(define (error-text e)                  ; who, message and irritants, as Chez prints them
  (if (condition? e)
      (call-with-string-output-port (lambda (port) (display-condition e port)))
      (format "~s" e)))

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

;; Load the suite; when it holds `#u8(` literals, through the rewrite above.
(let* ([path (cadr (command-line))]
       [text (call-with-input-file path get-string-all)]
       [r6 (r7rs->r6rs-text text)])
  (if (string=? r6 text)
      (load path)
      (let ([in (open-input-string r6)])
        (let loop ()
          (let ([d (read in)])
            (unless (eof-object? d)
              (eval d (interaction-environment))
              (loop)))))))
