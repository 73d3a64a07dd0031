;;; A program using (peer) as installed by `make install`. scripts/install-test.sh runs it with
;;; only the prefix's directories in GUILE_LOAD_PATH, GUILE_LOAD_COMPILED_PATH and
;;; LD_LIBRARY_PATH: no LIBPEER_DIR, nothing from the build tree. Two TCP peers on loopback
;;; share a value, then it prints "installed guile ok". Any failure: one line on stderr, exit 1.
;;;
;;;   guile scheme-tests/installed/guile.scm

(define (fail what key args)
  (let ((port (current-error-port)))
    (display "installed guile: " port)
    (display what port)
    (display ": " port)
    (display (string-trim-right
              (call-with-output-string (lambda (p) (print-exception p #f key args))))
             port)
    (newline port))
  (exit 1))

;; Loading the library (finding it, then libpeer) is where an installation goes wrong: say so
;; in one line, without the backtrace a failing `use-modules` prints.
(catch #t
  (lambda () (resolve-interface '(peer)))
  (lambda (key . args) (fail "loading (peer)" key args)))

(use-modules (peer) (rnrs bytevectors))

(define (check what ok)
  (unless ok (fail what 'misc-error (list #f "check failed" '() #f))))

(define (contacts p)
  (let ((entry (assq 'contacts (peer-stats p))))
    (and entry (cdr entry))))

;; A peer admits the one that connected to it once it has proved that peer's address (its own
;; introduction, answered), which may end after the connect returned: wait for it, bounded.
(define (await-contact p)
  (let loop ((i 0))
    (if (or (>= (or (contacts p) 0) 1) (= i 500))
        (or (contacts p) 0)
        (begin (usleep 10000) (loop (+ i 1))))))

(catch #t
  (lambda ()
    (let ((a (peer-open (peer-random-uid) "127.0.0.1" 0))
          (b (peer-open (peer-random-uid) "127.0.0.1" 0))
          (value (string->utf8 "installed guile")))
      (check "b connects to a" (peer-connect b "127.0.0.1" (peer-port a)))
      (let ((key (peer-set b value)))
        (check "a refs what b set" (equal? (peer-ref a key) value)))
      (check "peer-stats: contacts >= 1 on both"
             (and (>= (await-contact a) 1) (>= (await-contact b) 1)))
      (peer-close a)
      (peer-close b)))
  (lambda (key . args) (fail "two peers" key args)))

(display "installed guile ok")
(newline)
