;;; Guile's prelude for scheme-tests/suite.scm: the library and the helpers the portable
;;; suite expects (see the head of suite.scm). Loaded by run-guile.sh before the suite.

(use-modules (peer)
             (rnrs bytevectors)                 ; bytevector-u8-ref & co. are not core
             (ice-9 exceptions))                ; R7RS-style `guard`

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

(define (write-to-string datum)
  (call-with-output-string (lambda (port) (write datum port))))

;; Guile reads both R7RS #u8(...) and R6RS #vu8(...): plain `read` does.
(define (read-wire text)
  (call-with-input-string text read))

(define (error-text e)
  (cond ((and (exception? e) (exception-with-message? e))
         (let ((message (exception-message e))
               (irritants (if (exception-with-irritants? e) (exception-irritants e) '())))
           ;; Guile's own errors carry a format string (~S, ~A) plus irritants.
           (guard (x (#t (format #f "~a ~s" message irritants)))
             (apply format #f message irritants))))
        (else (format #f "~s" e))))
