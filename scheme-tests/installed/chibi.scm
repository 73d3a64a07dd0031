;;; A program using (peer) as installed by `make install`. scripts/install-test.sh runs it with
;;; only the prefix's directories in CHIBI_MODULE_PATH and CHIBI_LIBRARY_PATH: no LIBPEER_DIR,
;;; nothing from the build tree (the installed stub finds the installed libpeer through its
;;; rpath). Two TCP peers on loopback share a value and see each other in peer-stats, then it
;;; prints "installed chibi ok". Any failure: a message on stderr, exit status 1.
;;;
;;;   chibi scheme-tests/installed/chibi.scm

;; A missing or broken installation fails at this import: Chibi says why on stderr and
;; exits non-zero.
(import (scheme base) (scheme write) (scheme process-context)
        (only (chibi) print-exception)
        (only (srfi 18) thread-sleep!)
        (peer))

(define (fail what detail)
  (let ((err (current-error-port)))
    (display "installed chibi: " err)
    (display what err)
    (display ": " err)
    (display detail err)
    (newline err)
    (exit 1)))

;; Chibi's own text for a raised object ("ERROR in peer-open: ...", without the newline).
(define (error-text e)
  (let* ((port (open-output-string))
         (text (begin (print-exception e port) (get-output-string port)))
         (n (string-length text)))
    (if (and (> n 0) (char=? (string-ref text (- n 1)) #\newline))
        (substring text 0 (- n 1))
        text)))

(define (check what ok detail)
  (unless ok (fail what detail)))

(define (contacts p)
  (let ((entry (assq 'contacts (peer-stats p))))
    (if entry (cdr entry) 0)))

;; A peer admits the one that connected to it once it has proved that peer's address (its own
;; introduction, answered), which may end after the connect returned: wait for it, bounded.
(define (await-contact p)
  (let loop ((i 0))
    (if (or (>= (contacts p) 1) (= i 500))
        (contacts p)
        (begin (thread-sleep! 0.01) (loop (+ i 1))))))

(guard (e (#t (fail "two peers" (error-text e))))
  (let ((a (peer-open (peer-random-uid) "127.0.0.1" 0))
        (b (peer-open (peer-random-uid) "127.0.0.1" 0))
        (value (string->utf8 "installed chibi")))
    (check "b connects to a" (peer-connect b "127.0.0.1" (peer-port a)) (peer-port a))
    (let* ((key (peer-set b value))
           (got (peer-ref a key)))
      (check "a refs what b set" (equal? got value) got))
    (check "peer-stats: contacts >= 1 on both"
           (and (>= (await-contact a) 1) (>= (await-contact b) 1))
           (list (contacts a) (contacts b)))
    (peer-close a)
    (peer-close b)))

(display "installed chibi ok")
(newline)
(exit 0)
