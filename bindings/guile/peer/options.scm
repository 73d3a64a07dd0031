;;; (peer options): the options alist of `peer-open`, checked and read for peer_new_with.
;;;
;;; Keys: replication, republish, expire (integers in 0..2^32-1, 0 meaning libpeer's
;;; default; libpeer checks the ranges beyond that) and data-dir (a string without NUL).
;;; Nothing here touches C: (peer) fills the struct peer_options from the result.

(define-module (peer options)
  #:export (options-fields))

(define option-keys '(replication data-dir republish expire))

;; -> (replication data-dir-or-#f republish expire). `fail` raises the library's argument
;; error: (fail what value), `what` saying what was expected.
(define (options-fields options fail)
  (unless (and (list? options)
               (and-map (lambda (e) (and (pair? e) (memq (car e) option-keys))) options))
    (fail (format #f "options must be an integer (the replication) or an alist of ~a"
                  option-keys)
          options))
  (define (value key default) (cond ((assq key options) => cdr) (else default)))
  (define (u32 key)
    (let ((v (value key 0)))
      (unless (and (exact-integer? v) (<= 0 v #xffffffff))
        (fail (format #f "option ~a must be an integer in 0..4294967295" key) v))
      v))
  (let ((dir (value 'data-dir #f)))
    (unless (or (not dir) (and (string? dir) (not (string-index dir #\nul))))
      (fail "option data-dir must be a string" dir))
    (list (u32 'replication) dir (u32 'republish) (u32 'expire))))
