;; Run by scripts/install-test.sh against an installed libpeer and (peer), told only the
;; prefix's directories (CHEZSCHEMELIBDIRS, LD_LIBRARY_PATH), never LIBPEER_DIR:
;;   scheme --script scheme-tests/installed/chez.ss
;; Two TCP peers on loopback share a value, and see each other in peer-stats. Prints
;; "installed chez ok"; any failure: a message on standard error and exit status 1.
(import (chezscheme) (peer))

(define (fail fmt . args)
  (let ([err (current-error-port)])
    (put-string err "installed chez: ")
    (put-string err (apply format fmt args))
    (newline err)
    (flush-output-port err)
    (exit 1)))

(define (contacts p)
  (let ([e (assq 'contacts (peer-stats p))])
    (if e (cdr e) (fail "peer-stats has no contacts: ~s" (peer-stats p)))))
;; A peer admits the one that connected to it once it has proved that peer's address (its own
;; introduction, answered), which may end after the connect returned: wait for it, bounded.
(define (await-contact p)
  (let loop ([i 0])
    (if (or (>= (contacts p) 1) (= i 500))
        (contacts p)
        (begin (sleep (make-time 'time-duration 10000000 0)) (loop (+ i 1))))))

(guard (e (#t (fail "~a" (if (condition? e)
                             (call-with-string-output-port (lambda (port) (display-condition e port)))
                             (format "raised ~s" e)))))
  (let ([a (peer-open (peer-random-uid) "127.0.0.1" 0)]
        [b (peer-open (peer-random-uid) "127.0.0.1" 0)])
    (unless (peer-connect b "127.0.0.1" (peer-port a))
      (fail "peer-connect to 127.0.0.1:~a answered #f" (peer-port a)))
    (let* ([value (string->utf8 "installed")]
           [key (peer-set b value)]
           [got (peer-ref a key)])
      (unless (equal? got value) (fail "peer-ref of the value set by the other peer: ~s" got)))
    (for-each (lambda (p name)
                (unless (>= (await-contact p) 1) (fail "peer-stats of ~a: contacts ~a" name (contacts p))))
              (list a b) '("a" "b"))
    (peer-close a)
    (peer-close b)))

(display "installed chez ok")
(newline)
(exit 0)
