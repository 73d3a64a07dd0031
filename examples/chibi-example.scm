;;; A small tour of (peer) from Chibi Scheme: three peers on loopback share a value, a bag
;;; and a signed namespace record; then three peers on the program's own in-memory network
;;; (the draft's `(peer uid recv send replication)`) share a value.
;;;
;;;   cargo build --release && scripts/install-chibi.sh && bindings/chibi/build.sh
;;;   .deps/chibi/bin/chibi -I bindings/chibi -I build/chibi examples/chibi-example.scm

(import (scheme base) (scheme write) (peer))

(define (say . things) (for-each display things) (newline))

(define (hex bv)
  (let loop ((i 0) (acc ""))
    (if (= i (bytevector-length bv))
        acc
        (let ((b (bytevector-u8-ref bv i)))
          (loop (+ i 1)
                (string-append acc (if (< b 16) "0" "") (number->string b 16)))))))

(define (short bv) (string-append (substring (hex bv) 0 16) "..."))

;;; Built-in encrypted TCP: three peers with random uids on ephemeral ports.
(define peers (map (lambda (_) (peer-open (peer-random-uid) "127.0.0.1" 0)) '(1 2 3)))
(define first-peer (car peers))

(for-each (lambda (p)
            (unless (peer-connect p "127.0.0.1" (peer-port first-peer))
              (error "could not reach the first peer")))
          (cdr peers))
(for-each peer-bootstrap peers)
(say "peers on ports " (map peer-port peers))

;; Content-addressed values: the key is the SHA-256 of the value.
(define key (peer-set (cadr peers) (string->utf8 "Hello from Chibi")))
(say "set   " (short key))
(say "ref   " (utf8->string (peer-ref (car (cddr peers)) key)))
(say "ref of an unknown key: " (peer-ref first-peer (peer-random-uid)))

;; A bag: anyone may publish 32-byte values under a key.
(define topic (peer-random-uid))
(define item (peer-random-uid))
(for-each (lambda (p) (peer-bag-publish p topic item)) peers)
(let ((popular (peer-bag-popular first-peer topic)))
  (say "bag popular: " (vector-length popular) " value(s), first " (short (vector-ref popular 0))))

;; A namespace: only the holder of the secret key can write under its public key.
(call-with-values peer-keypair
  (lambda (secret public)
    (let* ((name (peer-random-uid))
           (value (peer-random-uid))
           (signature (peer-namespace-set first-peer secret public name value)))
      (say "namespace signature " (short signature))
      (say "namespace ref matches: "
           (equal? (peer-namespace-ref (car (cddr peers)) public name) value)))))

(for-each peer-close peers)

;;; The program's own transport: each peer has an inbox on an in-memory "network" keyed by
;;; port. `send` appends to the destination's inbox; `recv` takes from the peer's own. The
;;; library's own (green) thread calls them, never two at once, so the program runs no loop.
(define inboxes '())                      ; ((port . list-of-payloads) ...)

(define (inbox port) (assv port inboxes))

(define (send ip port payload)
  (let ((box (inbox port)))               ; a message to nobody is lost, as on a network
    (when box (set-cdr! box (append (cdr box) (list payload))))))

(define (make-recv port)
  (lambda ()
    (let ((box (inbox port)))
      (and (pair? (cdr box))
           (let ((payload (cadr box)))
             (set-cdr! box (cddr box))
             payload)))))

(define (network-peer port)
  (set! inboxes (cons (list port) inboxes))
  (peer (peer-random-uid) (make-recv port) send 5 (list (cons 'ip "127.0.0.1") (cons 'port port))))

(define mem-peers (map network-peer '(4001 4002 4003)))
(for-each (lambda (p) (peer-connect p "127.0.0.1" 4001)) (cdr mem-peers))
(for-each peer-bootstrap mem-peers)
(let ((k (peer-set (cadr mem-peers) (string->utf8 "Hello over an in-memory network"))))
  (say "in-memory ref: " (utf8->string (peer-ref (car mem-peers) k))))
(for-each peer-close mem-peers)
(say "closed")
