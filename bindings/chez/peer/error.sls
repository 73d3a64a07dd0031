;; The condition type (peer) raises, in its own library so that (peer) exports exactly the
;; names every Scheme binding shares; a program that wants the status code imports this too.
(library (peer error)
  (export &peer-error make-peer-error peer-error? peer-error-status raise-peer-error)
  (import (chezscheme))

  ;; status: libpeer's C status number (PEER_ERR_INVALID, PEER_ERR_CLOSED, ...; the C function
  ;; peer_status_symbol names it).
  (define-condition-type &peer-error &error make-peer-error peer-error?
    (status peer-error-status))

  (define (raise-peer-error who status message . irritants)
    (raise (condition (make-peer-error status)
                      (make-who-condition who)
                      (make-message-condition message)
                      (make-irritants-condition irritants)))))
