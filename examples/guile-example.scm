;;; A small tour of (peer) from Guile: three peers on loopback share a value, a bag and a
;;; signed namespace record.
;;;
;;;   cargo build --release
;;;   LIBPEER_DIR=target/release guile -L bindings/guile examples/guile-example.scm

(use-modules (peer)
             (rnrs bytevectors)
             (ice-9 format))

(define (hex bv)
  (string-concatenate (map (lambda (b) (format #f "~2,'0x" b)) (bytevector->u8-list bv))))

(define (short bv) (string-append (substring (hex bv) 0 16) "..."))

;; Three peers with random uids on ephemeral ports; the others know the first.
(define peers
  (map (lambda (_) (peer-open (peer-random-uid) "127.0.0.1" 0)) '(1 2 3)))
(define first-peer (car peers))

(for-each (lambda (p)
            (unless (peer-connect p "127.0.0.1" (peer-port first-peer))
              (error "could not reach the first peer")))
          (cdr peers))
(for-each peer-bootstrap peers)
(format #t "peers on ports ~{~a~^, ~}~%" (map peer-port peers))

;; Content-addressed values: the key is the SHA-256 of the value.
(define key (peer-set (cadr peers) (string->utf8 "Hello from Guile")))
(format #t "set   ~a~%" (short key))
(format #t "ref   ~s~%" (utf8->string (peer-ref (caddr peers) key)))
(format #t "ref of an unknown key: ~a~%" (peer-ref first-peer (peer-random-uid)))

;; A bag: anyone may publish 32-byte values under a key.
(define topic (peer-random-uid))
(define item (peer-random-uid))
(for-each (lambda (p) (peer-bag-publish p topic item)) peers)
(format #t "bag popular: ~a value(s), first ~a~%"
        (vector-length (peer-bag-popular first-peer topic)) (short item))

;; A namespace: only the holder of the secret key can write under its public key.
(call-with-values peer-keypair
  (lambda (secret public)
    (let* ((name (peer-random-uid))
           (value (peer-random-uid))
           (signature (peer-namespace-set first-peer secret public name value)))
      (format #t "namespace signature ~a~%" (short signature))
      (format #t "namespace ref matches: ~a~%"
              (equal? (peer-namespace-ref (caddr peers) public name) value)))))

(for-each peer-close peers)
(display "closed\n")
