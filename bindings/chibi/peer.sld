;; (peer): libpeer for Chibi Scheme. Build the C part with bindings/chibi/build.sh and put
;; both bindings/chibi and build/chibi on the module path (-I).
(define-library (peer)
  (export peer peer-open peer-close peer? peer-port peer-uid peer-forget
          peer-connect peer-bootstrap peer-set peer-ref
          peer-bag-publish peer-bag-popular peer-bag-recent peer-bag-sample
          peer-bag-popular-at peer-bag-recent-at peer-bag-sample-at
          peer-namespace-set peer-namespace-ref peer-namespace-ref-at
          peer-keypair peer-random-uid peer-max-value-size peer-wire-normalize)
  (import (scheme base) (srfi 18) (chibi weak))
  (include-shared "peer")
  (include "peer.scm"))
