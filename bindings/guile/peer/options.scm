;;; (peer options): the options alists of `peer-open` and `peer`, checked and read.
;;;
;;; `peer-open`: replication, republish, expire (integers in 0..2^32-1, 0 meaning libpeer's
;;; default; libpeer checks the ranges beyond that), data-dir (a string without NUL) and
;;; address-limits (default, strict or off: struct peer_options' address_limits 0, 1, 2).
;;; `peer`: ip and port (the peer's address on the program's network: both or neither),
;;; serve (thread or poll) and on-error (a procedure of one argument).
;;; Nothing here touches C: (peer) fills the C arguments from the results.

(define-module (peer options)
  #:export (options-fields external-options))

;; Checks `options` is an alist of `keys`; `fail` raises the library's argument error:
;; (fail what value), `what` saying what was expected.
(define (check-alist options keys fail)
  (unless (and (list? options)
               (and-map (lambda (e) (and (pair? e) (memq (car e) keys))) options))
    (fail (format #f "options must be an alist with keys among ~a" keys) options)))

(define (option options key default)
  (cond ((assq key options) => cdr) (else default)))

(define (string-without-nul? x)
  (and (string? x) (not (string-index x #\nul))))

(define open-keys '(replication data-dir republish expire address-limits))

;; address-limits' symbols and their C codes (struct peer_options' address_limits).
(define address-limits-codes '((default . 0) (strict . 1) (off . 2)))

;; -> (replication data-dir-or-#f republish expire address-limits-code).
(define (options-fields options fail)
  (unless (list? options)
    (fail (format #f "options must be an integer (the replication) or an alist with keys among ~a"
                  open-keys)
          options))
  (check-alist options open-keys fail)
  (define (u32 key)
    (let ((v (option options key 0)))
      (unless (and (exact-integer? v) (<= 0 v #xffffffff))
        (fail (if (eq? key 'replication)
                  "option replication must be an exact integer in 5..20"
                  (format #f "option ~a must be an exact integer in 0..4294967295" key))
              v))
      v))
  (let ((dir (option options 'data-dir #f)))
    (unless (or (not dir) (string-without-nul? dir))
      (fail "option data-dir must be a string" dir))
    (let ((limits (option options 'address-limits 'default)))
      (unless (assq limits address-limits-codes)
        (fail "option address-limits must be default, strict or off" limits))
      (list (u32 'replication) dir (u32 'republish) (u32 'expire)
            (cdr (assq limits address-limits-codes))))))

(define external-keys '(ip port serve on-error))

;; -> (ip port serve on-error): ip and port #f when not given, on-error #f for the default.
(define (external-options options fail)
  (check-alist options external-keys fail)
  (let ((ip (assq 'ip options))
        (port (assq 'port options))
        (serve (option options 'serve 'thread))
        (on-error (assq 'on-error options)))
    (when (and ip (not (string-without-nul? (cdr ip))))
      (fail "option ip must be a string" (cdr ip)))
    (when (and port (not (and (exact-integer? (cdr port)) (<= 0 (cdr port) 65535))))
      (fail "option port must be an exact integer in 0..65535" (cdr port)))
    (unless (eq? (not ip) (not port))
      (fail "options ip and port go together: give both or neither" options))
    (unless (memq serve '(thread poll))
      (fail "option serve must be thread or poll" serve))
    (when (and on-error (not (procedure? (cdr on-error))))
      (fail "option on-error must be a procedure" (cdr on-error)))
    (list (and ip (cdr ip)) (and port (cdr port)) serve (and on-error (cdr on-error)))))
