;; (peer): libpeer for Chibi Scheme. In the build tree: build the C part with
;; bindings/chibi/build.sh and put both bindings/chibi and build/chibi on the module path (-I).
;; Installed (install.sh): this file, the included ones and peer.so in one module directory.
(define-library (peer)
  (export peer peer-open peer-close peer? peer-port peer-ip peer-uid peer-forget
          peer-stats
          peer-connect peer-bootstrap peer-set peer-ref peer-poll
          peer-bag-publish peer-bag-popular peer-bag-recent peer-bag-sample
          peer-bag-popular-at peer-bag-recent-at peer-bag-sample-at
          peer-namespace-set peer-namespace-ref peer-namespace-ref-at
          peer-keypair peer-random-uid peer-max-value-size peer-max-external-value-size
          peer-wire-normalize
          peer-error? peer-error-who peer-error-status peer-error-symbol peer-error-message)
  (import (scheme base) (scheme read) (scheme write) (srfi 18) (chibi weak)
          (only (chibi) make-exception exception? exception-kind)
          (only (chibi ast) atomically))
  (include-shared "peer")
  ;; One home per concern: errors and argument checks; the program's transport (envelopes,
  ;; the library thread, peer-poll); the procedures programs call.
  (include "peer-error.scm" "peer-transport.scm" "peer.scm"))
