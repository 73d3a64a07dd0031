;; (peer error): the one error shape of (peer). Every error the library raises itself is a
;; condition &peer-error (status: libpeer's number; symbol: its name in libpeer's table) +
;; &who (the Scheme procedure, never a C name) + &message + &irritants, so Chez prints
;; "Exception in peer-open: invalid argument: ..." and a program reads it with Chez's own
;; condition procedures or the accessors shared with Guile and Chibi (exported by (peer)).
(library (peer error)
  (export &peer-error make-peer-error peer-error? peer-error-status peer-error-symbol
          peer-error-who peer-error-message
          raise-peer-error raise-invalid raise-failure)
  (import (chezscheme) (peer ffi))

  (define-condition-type &peer-error &error make-peer-error peer-error?
    (status peer-error-status)
    (symbol peer-error-symbol))

  (define (peer-error-who e) (and (who-condition? e) (condition-who e)))
  (define (peer-error-message e) (if (message-condition? e) (condition-message e) ""))

  (define (raise-peer-error who status message irritants)
    (raise (condition (make-peer-error status (status-symbol status))
                      (make-who-condition who)
                      (make-message-condition message)
                      (make-irritants-condition irritants))))

  (define status-invalid (status-code 'invalid))

  ;; The library's own argument checks: `invalid`, "invalid argument: <what>", the argument(s).
  (define (raise-invalid who what . irritants)
    (raise-peer-error who status-invalid (string-append "invalid argument: " what) irritants))

  ;; A libpeer failure: status rc and the message read right after it on the calling thread.
  (define (raise-failure who rc message)
    (raise-peer-error who rc message '())))
