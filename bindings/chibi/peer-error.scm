;;; Errors: libpeer's status table, the one error shape, argument checks.
;;;
;;; Every error the library raises itself is a native Chibi exception,
;;; (make-exception kind message irritants procedure #f): kind is the status symbol,
;;; procedure the exported procedure object, so that Chibi's printer says
;;; "ERROR in peer-open: <message>" and error-object-message/-irritants work on it. The
;;; message never names a procedure or a C function: libpeer's reason
;;; (peer_last_error_reason, else peer_strerror), or "invalid argument: <what>".

;; libpeer's statuses as ((symbol . number) ...), read from the library once at load time
;; (peer_status_codes, peer_status_symbol), so no status number is copied here.
(define status-table
  (let ((codes (%peer-status-codes)))
    (unless (pair? codes) (error "peer: cannot read libpeer's status codes"))
    (map (lambda (code) (cons (string->symbol (%peer-status-symbol code)) code)) codes)))

;; The number of the status named `symbol`.
(define (status-code symbol)
  (let ((entry (assq symbol status-table)))
    (unless entry (error "peer: libpeer has no status" symbol))
    (cdr entry)))

;; The symbol of status number `code` (internal for a number libpeer does not define).
(define (status-symbol code)
  (let loop ((t status-table))
    (cond ((null? t) 'internal)
          ((= (cdar t) code) (caar t))
          (else (loop (cdr t))))))

(define status-not-found (status-code 'not-found))
(define status-unreachable (status-code 'unreachable))

;;; Raising

(define (raise-peer-error who kind message irritants)
  (raise (make-exception kind message irritants who #f)))

;; The library's own check failed: status invalid, the offending argument(s) as irritants.
(define (invalid who what . irritants)
  (raise-peer-error who 'invalid (string-append "invalid argument: " what) irritants))

;; libpeer said no: status `rc`, libpeer's reason (read on the thread that made the call).
(define (status-error who rc reason)
  (raise-peer-error who (status-symbol rc)
                    (if (and (string? reason) (positive? (string-length reason)))
                        reason
                        (%peer-strerror rc))
                    '()))

;; A direct call on this (the Scheme) thread: (f arg ...), its result, or status-error from
;; the glue's record of the failure. Green-thread switches are off from the call to the
;; reading of its reason: another thread's libpeer call in between (the library thread's)
;; would replace the thread-local message. The arguments are evaluated and checked before:
;; an exception inside `atomically` would leave switching off.
;; The failure is a record of its own, so a call may return any object (peer-stats a list).
(define (direct-call who f . args)
  (let ((res (atomically
              (let ((r (apply f args)))
                (or r (make-failure (%peer-glue-last-status) (%peer-glue-last-reason)))))))
    (if (failure? res) (status-error who (failure-status res) (failure-reason res)) res)))

(define-record-type <failure>
  (make-failure status reason)
  failure?
  (status failure-status)
  (reason failure-reason))

;;; The shared accessors

;; (procedure . name) for every exported procedure; filled at the end of peer.scm.
(define exported-procedures '())

(define (who-of e)
  (let ((entry (assq (%exception-procedure e) exported-procedures)))
    (and entry (cdr entry))))

(define (peer-error? x)
  (and (exception? x)
       (assq (exception-kind x) status-table)
       (who-of x)
       #t))

(define (check-peer-error who e)
  (unless (peer-error? e) (invalid who "not a peer error" e)))

(define (peer-error-who e)
  (check-peer-error peer-error-who e)
  (who-of e))

(define (peer-error-symbol e)
  (check-peer-error peer-error-symbol e)
  (exception-kind e))

(define (peer-error-status e)
  (check-peer-error peer-error-status e)
  (status-code (exception-kind e)))

(define (peer-error-message e)
  (check-peer-error peer-error-message e)
  (error-object-message e))

;;; Argument checks

(define (check-bytes who what bv len)
  (unless (and (bytevector? bv) (= (bytevector-length bv) len))
    (invalid who (string-append what " must be a " (number->string len) "-byte bytevector")
             bv)))

(define (check-port who port)
  (unless (and (exact-integer? port) (<= 0 port 65535))
    (invalid who "port must be an exact integer in 0..65535" port)))

;; An IP address or host name: libpeer reads it as a C string, so no NUL inside.
(define (check-host who host)
  (unless (and (string? host) (not (string-index host #\null)))
    (invalid who "ip must be a string (an IP address or a host name)" host)))

(define (string-index s c)
  (let loop ((i 0))
    (cond ((= i (string-length s)) #f)
          ((char=? (string-ref s i) c) i)
          (else (loop (+ i 1))))))

;; libpeer checks the range (5..20); the C type needs an integer it can hold.
(define (check-replication who r)
  (unless (and (exact-integer? r) (<= 0 r #xFFFFFFFF))
    (invalid who "replication must be an exact integer in 5..20" r)))

(define (check-cap who cap)
  (unless (and (exact-integer? cap) (<= 0 cap 65536))
    (invalid who "cap must be an exact integer in 0..65536" cap)))
