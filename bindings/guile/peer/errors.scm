;;; (peer errors): the one error shape of (peer), and the argument checks that raise it.
;;;
;;; Every error the library raises itself is a compound exception:
;;;   &peer-error (status number, status symbol) + &error + &origin (the Scheme procedure's
;;;   name) + &message + &irritants (the offending arguments of the library's own checks)
;;; plus a kind-and-args part (key `peer-error`, args in scm-error's layout) so that Guile's
;;; own printer shows it as `In procedure peer-open: invalid argument: ...`, and
;;; `(catch 'peer-error ...)` works as for Guile's own errors.

(define-module (peer errors)
  #:use-module (ice-9 exceptions)
  #:use-module (rnrs bytevectors)
  #:use-module (peer ffi)
  #:export (peer-error? peer-error-who peer-error-status peer-error-symbol peer-error-message
            raise-peer-error outcome check invalid
            check-bytes check-ip check-port check-replication check-cap check-procedure
            status-invalid status-closed status-unreachable))

(define-exception-type &peer-error &exception
  make-peer-error-part peer-error?
  (status peer-error-status)
  (symbol peer-error-symbol))

(define (peer-error-who e) (exception-origin e))

;; Not exported by (ice-9 exceptions) in 3.0.8; its record type is core.
(define make-exception-with-kind-and-args (record-constructor &exception-with-kind-and-args))
(define (peer-error-message e) (exception-message e))

(define status-invalid (status-code 'invalid))
(define status-closed (status-code 'closed))
(define status-unreachable (status-code 'unreachable))

;; An argument as a printed error shows it: never a whole large bytevector.
(define (describe x)
  (if (bytevector? x)
      (format #f "a ~a-byte bytevector" (bytevector-length x))
      (let ((text (format #f "~s" x)))
        (if (> (string-length text) 60) (string-append (substring text 0 60) "...") text))))

(define (raise-peer-error who status message irritants)
  (let ((shown (if (null? irritants)
                   message
                   (string-append message ", got "
                                  (string-join (map describe irritants) ", ")))))
    (raise-exception
     (make-exception (make-peer-error-part status (status-symbol status))
                     (make-error)
                     (make-exception-with-origin who)
                     (make-exception-with-message message)
                     (make-exception-with-irritants irritants)
                     (make-exception-with-kind-and-args 'peer-error (list who "~A" (list shown) #f))))))

;; Guile's layout for its own errors (scm-error-printer, which boot-9 does not export).
(set-exception-printer!
 'peer-error
 (lambda (port key args punt)
   (apply (case-lambda
            ((who format-string format-args . _)
             (format port "In procedure ~a: " who)
             (apply format port format-string format-args))
            (_ (punt)))
          args)))

;; What went wrong, as libpeer explains it (without its C function's name); the status's
;; fixed description when it says nothing. Must run on the thread that made the failing
;; call: the reason is thread-local.
(define (reason status)
  (let ((text (c-string (%last-error-reason))))
    (if (string-null? text) (c-string (%strerror status)) text)))

;; A C call's outcome: its status when >= 0, else (status . reason) read on the same thread.
(define (outcome status)
  (if (< status 0) (cons status (reason status)) status))

;; The status of an outcome, or raise its failure as `who`'s.
(define (check who result)
  (if (pair? result)
      (raise-peer-error who (car result) (cdr result) '())
      result))

;; The library's own argument checks: status `invalid`, the offending value as irritant.
(define (invalid who what . irritants)
  (raise-peer-error who status-invalid (string-append "invalid argument: " what) irritants))

(define (check-bytes who name bv len)
  (unless (and (bytevector? bv) (= (bytevector-length bv) len))
    (invalid who (format #f "~a must be a ~a-byte bytevector" name len) bv)))

;; An IP address or a host name: libpeer resolves and judges it; NUL would cut it short.
(define (check-ip who ip)
  (unless (and (string? ip) (not (string-index ip #\nul)))
    (invalid who "ip must be a string" ip)))

(define (check-port who port)
  (unless (and (exact-integer? port) (<= 0 port 65535))
    (invalid who "port must be an exact integer in 0..65535" port)))

;; The range 5..20 is libpeer's to check (with its own reason); type and C range are ours.
(define (check-replication who r)
  (unless (and (exact-integer? r) (<= 0 r #xffffffff))
    (invalid who "replication must be an exact integer in 5..20" r)))

(define (check-cap who cap)
  (unless (and (exact-integer? cap) (<= 0 cap 1000000))
    (invalid who "cap must be an exact integer in 0..1000000" cap)))

(define (check-procedure who name x)
  (unless (procedure? x)
    (invalid who (format #f "~a must be a procedure" name) x)))
