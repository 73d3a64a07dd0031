;; libpeer from Chez Scheme: the draft's (peer uid recv send replication) over an in-memory
;; network of this process, then two peers over the built-in encrypted TCP transport.
;;   cargo build --release
;;   scheme --libdirs bindings/chez --script examples/chez-example.ss
(import (chezscheme) (peer))

;; ---- an in-memory network: one FIFO of envelopes per address ----
;; The library's own thread calls recv and send (never two at once), so no locks are needed;
;; each peer takes the address libpeer derives from its uid.
(define inboxes (make-hashtable string-hash string=?))

(define (address ip port) (format "~a ~a" ip port))

(define (deliver! to payload)
  (hashtable-update! inboxes to (lambda (q) (append q (list payload))) '()))

(define (take! at)
  (let ([q (hashtable-ref inboxes at '())])
    (and (pair? q)
         (begin (hashtable-set! inboxes at (cdr q)) (car q)))))

(define (make-memory-peer)
  (let* ([at #f]
         [p (peer (peer-random-uid)
                  (lambda () (and at (take! at)))                               ; recv
                  (lambda (ip port payload) (deliver! (address ip port) payload)) ; send
                  5)])
    (set! at (address (peer-ip p) (peer-port p)))
    p))

(define peers (let loop ([i 0] [acc '()])
                (if (= i 8) (reverse acc) (loop (+ i 1) (cons (make-memory-peer) acc)))))
(define first-peer (car peers))

;; Everyone introduces itself to the first peer, then fills its routing table.
(for-each (lambda (p) (peer-connect p (peer-ip first-peer) (peer-port first-peer))) (cdr peers))
(for-each peer-bootstrap peers)

;; Values: stored at the peers nearest SHA-256(value), found from any peer.
(define key (peer-set (list-ref peers 3) (string->utf8 "hello, decentralized world")))
(printf "peer-ref from another peer: ~s\n" (utf8->string (peer-ref (list-ref peers 6) key)))

;; Bags: anyone adds 32-byte values under a key.
(define topic (peer-random-uid))
(peer-bag-publish (list-ref peers 1) topic (peer-random-uid))
(peer-bag-publish (list-ref peers 2) topic (peer-random-uid))
(printf "bag values under the topic: ~a\n" (vector-length (peer-bag-recent (list-ref peers 5) topic)))

;; Namespaces: values signed with an Ed25519 key, one per (public key, key).
(let-values ([(secret public) (peer-keypair)])
  (let* ([name (make-bytevector 32 1)]
         [value (make-bytevector 32 42)]
         [signature (peer-namespace-set (list-ref peers 4) secret public name value)])
    (printf "namespace value found: ~a; pinned to its signature: ~a\n"
            (equal? (peer-namespace-ref (list-ref peers 7) public name) value)
            (equal? (peer-namespace-ref (list-ref peers 7) public name signature) value))))

(for-each peer-close peers)

;; ---- the built-in transport: real sockets, Noise-encrypted ----
(define a (peer-open (peer-random-uid) "127.0.0.1" 0))
(define b (peer-open (peer-random-uid) "127.0.0.1" 0))
(printf "TCP connect: ~a\n" (peer-connect a "127.0.0.1" (peer-port b)))
(define tcp-key (peer-set a (string->utf8 "over TCP")))
(printf "TCP peer-ref: ~s\n" (utf8->string (peer-ref b tcp-key)))
(guard (e [(peer-error? e)
           (printf "errors are conditions: ~a in ~a: ~a\n"
                   (peer-error-symbol e) (peer-error-who e) (peer-error-message e))])
  (peer-set a (make-bytevector (+ peer-max-value-size 1) 0)))
(peer-close a)
(peer-close b)
