;;; The libpeer Scheme test suite: ONE portable file run by Guile, Chez and Chibi.
;;;
;;; Each runner (scheme-tests/run-*.sh) loads its prelude first, which makes the library
;;; `(peer)` available together with these helpers:
;;;   (bytevector-from-list lst)  (bv-copy bv)  (string->utf8* s)  (exit-with-failures n)
;;;   (write-to-string datum)     `write` into a string (R6RS and R7RS string ports differ)
;;;   (read-wire string)          `read` one datum from a string; it must understand the
;;;                               R7RS `#u8(...)` libpeer writes (Chez 9.5's `read` does not,
;;;                               so Chez's prelude rewrites `#u8(` to `#vu8(` first)
;;;   (error-text e)              the message of a raised object, as a string
;;;   (temp-path name)            a path named `name` in a fresh directory of this run (each
;;;                               runner makes one and removes it at the end: PEER_TEST_DIR)
;;;   (sleep-ms n)                sleep n milliseconds
;;; Only the subset common to R6RS and R7RS is used (the project brief lists it): no
;;; imports, no macros, no srfi. The harness is `check`; groups survive unexpected errors;
;;; the last line printed is `N passed, M failed`, and the runners decide from it.

;;; ---------------------------------------------------------------------------------------
;;; Harness

(define passed 0)
(define failed 0)

(define (check name ok)
  (if ok
      (set! passed (+ passed 1))
      (begin (set! failed (+ failed 1))
             (display "FAIL: ") (display name) (newline))))

(define (raises? thunk)
  (guard (e (#t #t))
    (thunk)
    #f))

(define (check-raises name thunk)
  (check (string-append name " raises") (raises? thunk)))

;; The message of what `thunk` raised, or #f when it returned.
(define (raised-text thunk)
  (guard (e (#t (error-text e)))
    (thunk)
    #f))

;; A group of checks: an unexpected error is one failure and the suite goes on.
(define (group name thunk)
  (display "-- ") (display name) (newline)
  (guard (e (#t (check (string-append name ": unexpected error: " (error-text e)) #f)))
    (thunk)))

;; Run (body), then close every peer in the list `peers` returns, whatever happened.
(define (with-peers peers body)
  (dynamic-wind
   (lambda () #f)
   body
   (lambda () (for-each (lambda (p) (guard (e (#t #f)) (peer-close p))) (peers)))))

;;; ---------------------------------------------------------------------------------------
;;; Helpers (portable: no bitwise operations, no srfi)

(define (bytes n byte) (make-bytevector n byte))

(define (bytevector-of-32? x) (and (bytevector? x) (= (bytevector-length x) 32)))

(define (string-contains? s sub)
  (let ((n (string-length s)) (m (string-length sub)))
    (let loop ((i 0))
      (cond ((> (+ i m) n) #f)
            ((string=? (substring s i (+ i m)) sub) #t)
            (else (loop (+ i 1)))))))

(define (vector-member? v x)
  (let loop ((i 0))
    (cond ((= i (vector-length v)) #f)
          ((equal? (vector-ref v i) x) #t)
          (else (loop (+ i 1))))))

(define (vector-every? pred v)
  (let loop ((i 0))
    (cond ((= i (vector-length v)) #t)
          ((pred (vector-ref v i)) (loop (+ i 1)))
          (else #f))))

(define (byte-xor a b)
  (let loop ((a a) (b b) (bit 1) (acc 0))
    (if (= bit 256)
        acc
        (loop (quotient a 2) (quotient b 2) (* bit 2)
              (if (= (remainder a 2) (remainder b 2)) acc (+ acc bit))))))

;; XOR distance between two ids, as a 256-bit integer (docs/PROTOCOL.md §1).
(define (distance a b)
  (let loop ((i 0) (acc 0))
    (if (= i 32)
        acc
        (loop (+ i 1) (+ (* acc 256) (byte-xor (bytevector-u8-ref a i) (bytevector-u8-ref b i)))))))

(define (bytes->integer bv)
  (let loop ((i 0) (acc 0))
    (if (= i (bytevector-length bv))
        acc
        (loop (+ i 1) (+ (* acc 256) (bytevector-u8-ref bv i))))))

;; The peer of `peers` whose uid is nearest to `key`.
(define (nearest-peer peers key)
  (let loop ((ps (cdr peers)) (best (car peers)) (d (distance (peer-uid (car peers)) key)))
    (if (null? ps)
        best
        (let ((d2 (distance (peer-uid (car ps)) key)))
          (if (< d2 d)
              (loop (cdr ps) (car ps) d2)
              (loop (cdr ps) best d))))))

(define (keypair-list)
  (call-with-values peer-keypair (lambda (secret public) (list secret public))))

;; SHA-256("abc"), FIPS 180-2 appendix B.1: peer-set returns SHA-256 of the value.
(define sha256-abc
  (bytevector-from-list
   '(#xba #x78 #x16 #xbf #x8f #x01 #xcf #xea #x41 #x41 #x40 #xde #x5d #xae #x22 #x23
     #xb0 #x03 #x61 #xa3 #x96 #x17 #x7a #x9c #xb4 #x10 #xff #x61 #xf2 #x00 #x15 #xad)))

;; SHA-256 of the empty string.
(define sha256-empty
  (bytevector-from-list
   '(#xe3 #xb0 #xc4 #x42 #x98 #xfc #x1c #x14 #x9a #xfb #xf4 #xc8 #x99 #x6f #xb9 #x24
     #x27 #xae #x41 #xe4 #x64 #x9b #x93 #x4c #xa4 #x95 #x99 #x1b #x78 #x52 #xb8 #x55)))

;;; ---------------------------------------------------------------------------------------
;;; Procedures that need no network

(group "constants and random"
  (lambda ()
    (check "peer-max-value-size is 262138" (equal? peer-max-value-size 262138))
    (let ((a (peer-random-uid)) (b (peer-random-uid)))
      (check "peer-random-uid gives 32 bytes" (bytevector-of-32? a))
      (check "peer-random-uid differs between calls" (not (equal? a b))))
    (let ((k1 (keypair-list)) (k2 (keypair-list)))
      (check "peer-keypair gives two 32-byte values"
             (and (bytevector-of-32? (car k1)) (bytevector-of-32? (cadr k1))))
      (check "peer-keypair secret differs from public" (not (equal? (car k1) (cadr k1))))
      (check "peer-keypair differs between calls" (not (equal? (car k1) (car k2)))))
    (check "peer? of a bytevector" (not (peer? (peer-random-uid))))
    (check "peer? of a symbol" (not (peer? 'peer)))
    (check "peer? of #f" (not (peer? #f)))))

(group "argument errors when making a peer"
  (lambda ()
    (let ((uid (peer-random-uid))
          (recv (lambda () #f))
          (send (lambda (ip port payload) #f)))
      (check-raises "peer-open with a string uid" (lambda () (peer-open "not a uid" "127.0.0.1" 0)))
      (check-raises "peer-open with a 31-byte uid" (lambda () (peer-open (bytes 31 1) "127.0.0.1" 0)))
      (check-raises "peer-open with replication 4" (lambda () (peer-open uid "127.0.0.1" 0 4)))
      (check-raises "peer-open with replication 21" (lambda () (peer-open uid "127.0.0.1" 0 21)))
      (check-raises "peer-open with ip \"not-an-ip\"" (lambda () (peer-open uid "not-an-ip" 0)))
      (check-raises "peer-open with ip \"999.1.1.1\"" (lambda () (peer-open uid "999.1.1.1" 0)))
      (check-raises "peer-open with a non-string ip" (lambda () (peer-open uid 127 0)))
      (check-raises "peer-open with port 70000" (lambda () (peer-open uid "127.0.0.1" 70000)))
      (check-raises "peer with a string uid" (lambda () (peer "uid" recv send 5)))
      (check-raises "peer with a 33-byte uid" (lambda () (peer (bytes 33 0) recv send 5)))
      (check-raises "peer with replication 4" (lambda () (peer uid recv send 4)))
      (check-raises "peer with replication 21" (lambda () (peer uid recv send 21)))
      (check-raises "peer with a bad ip" (lambda () (peer uid recv send 5 "bad ip" 4000))))))

(group "one peer: accessors, argument errors, close"
  (lambda ()
    (let* ((uid (peer-random-uid))
           (p (peer-open uid "127.0.0.1" 0))
           (key (peer-random-uid))
           (v32 (peer-random-uid))
           (kp (keypair-list)))
      (with-peers
       (lambda () (list p))
       (lambda ()
         (check "peer? of an open peer" (peer? p))
         (check "peer-uid returns the uid" (equal? (peer-uid p) uid))
         (check "peer-uid returns a copy" (not (eq? (peer-uid p) uid)))
         (check "peer-port of port 0 is the bound port" (> (peer-port p) 0))
         (check-raises "peer-ref with a 31-byte key" (lambda () (peer-ref p (bytes 31 0))))
         (check-raises "peer-ref with a string key" (lambda () (peer-ref p "key")))
         (check-raises "peer-set with a string value" (lambda () (peer-set p "value")))
         (check-raises "peer-set with a value longer than peer-max-value-size"
                       (lambda () (peer-set p (bytes (+ peer-max-value-size 1) 7))))
         (let ((text (raised-text (lambda () (peer-set p (bytes (+ peer-max-value-size 1) 7))))))
           (check "too-large error names peer-set" (and text (string-contains? text "peer-set"))))
         (check-raises "peer-connect with a bad ip" (lambda () (peer-connect p "nowhere" 4000)))
         ;; -> #f, not an error: each library finds that status by its symbol, `unreachable`.
         (let* ((q (peer-open (peer-random-uid) "127.0.0.1" 0))
                (dead-port (peer-port q)))
           (peer-close q)
           (check "peer-connect to a port nobody listens on is #f"
                  (guard (e (#t #f)) (eq? (peer-connect p "127.0.0.1" dead-port) #f))))
         (check-raises "peer-bag-publish with a 31-byte value" (lambda () (peer-bag-publish p key (bytes 31 0))))
         (check-raises "peer-bag-publish with a 33-byte key" (lambda () (peer-bag-publish p (bytes 33 0) v32)))
         (check-raises "peer-bag-popular with a short key" (lambda () (peer-bag-popular p (bytes 3 0))))
         (check-raises "peer-bag-recent-at with a short uid" (lambda () (peer-bag-recent-at p (bytes 3 0) key)))
         (check-raises "peer-bag-sample with a negative cap" (lambda () (peer-bag-sample p key -1)))
         (check-raises "peer-namespace-set with a short secret"
                       (lambda () (peer-namespace-set p (bytes 31 0) (cadr kp) key v32)))
         (check-raises "peer-namespace-set with a 33-byte value"
                       (lambda () (peer-namespace-set p (car kp) (cadr kp) key (bytes 33 0))))
         (check-raises "peer-namespace-ref with a 63-byte signature"
                       (lambda () (peer-namespace-ref p (cadr kp) key (bytes 63 0))))
         (check-raises "peer-namespace-ref-at with a short uid"
                       (lambda () (peer-namespace-ref-at p (bytes 1 0) (cadr kp) key)))
         (check "peer-close of an open peer" (not (raises? (lambda () (peer-close p)))))
         (check "peer-close twice is fine" (not (raises? (lambda () (peer-close p)))))
         (check "peer? of a closed peer is still #t" (peer? p))
         (check-raises "peer-port on a closed peer" (lambda () (peer-port p)))
         (check-raises "peer-uid on a closed peer" (lambda () (peer-uid p)))
         (check-raises "peer-connect on a closed peer" (lambda () (peer-connect p "127.0.0.1" 4000)))
         (check-raises "peer-bootstrap on a closed peer" (lambda () (peer-bootstrap p)))
         (check-raises "peer-set on a closed peer" (lambda () (peer-set p (bytes 3 1))))
         (check-raises "peer-ref on a closed peer" (lambda () (peer-ref p key)))
         (check-raises "peer-bag-publish on a closed peer" (lambda () (peer-bag-publish p key v32)))
         (check-raises "peer-bag-popular on a closed peer" (lambda () (peer-bag-popular p key)))
         (check-raises "peer-bag-sample-at on a closed peer" (lambda () (peer-bag-sample-at p uid key)))
         (check-raises "peer-namespace-set on a closed peer"
                       (lambda () (peer-namespace-set p (car kp) (cadr kp) key v32)))
         (check-raises "peer-namespace-ref on a closed peer" (lambda () (peer-namespace-ref p (cadr kp) key)))
         (let ((text (raised-text (lambda () (peer-ref p key)))))
           (check "closed-peer error says closed" (and text (string-contains? text "closed")))))))))

;;; ---------------------------------------------------------------------------------------
;;; Wire conformance: the messages of docs/PROTOCOL.md §4 as this Scheme writes them, through
;;; libpeer's safe reader and canonical writer, and back through this Scheme's reader.

(group "wire conformance"
  (lambda ()
    (let* ((uid (bytes->integer (peer-random-uid)))
           (top (- (expt 2 256) 1))
           (v32 (peer-random-uid))
           (w32 (peer-random-uid))
           (sig (let ((b (make-bytevector 64 0)))
                  (do ((i 0 (+ i 1))) ((= i 64) b) (bytevector-u8-set! b i (* i 4)))))
           (all-bytes (let ((b (make-bytevector 256 0)))
                        (do ((i 0 (+ i 1))) ((= i 256) b) (bytevector-u8-set! b i i))))
           (seq 1570278240000000)
           (shapes
            (list (vector 'iam uid 4001)
                  (vector 'iam top #f)
                  (vector 'welcome "127.0.0.1" 4001 uid)
                  (vector 'peers 0)
                  (vector 'peer)
                  (vector 'peer (vector uid "127.0.0.1" 4001 top) (vector 1 "10.0.0.2" 65535 2))
                  (vector 'set (bytevector-from-list '(1 2 255)))
                  (vector 'set all-bytes)
                  #t
                  #f
                  (vector 'ref uid)
                  (vector 'value all-bytes)
                  (vector 'bag-add uid v32)
                  (vector 'bag-popular uid)
                  (vector 'bag-recent uid)
                  (vector 'bag-sample uid)
                  (vector 'bag)
                  (vector 'bag (vector v32 3 17) (vector w32 1 0))
                  (vector 'namespace-set top uid v32 sig seq)
                  (vector 'namespace-ref top uid)
                  (vector 'namespace v32 sig seq))))
      (for-each
       (lambda (datum)
         (let* ((text (write-to-string datum))
                (name (if (> (string-length text) 40) (string-append (substring text 0 40) "...") text))
                (norm (guard (e (#t (check (string-append "normalize " name ": " (error-text e)) #f) #f))
                        (peer-wire-normalize text))))
           (when norm
             (check (string-append "round trip " name) (equal? (read-wire norm) datum))
             (check (string-append "canonical text is stable " name)
                    (equal? (peer-wire-normalize norm) norm)))))
       shapes)
      ;; The canonical text itself: R7RS `write`, bytevectors as #u8(...).
      (check "canonical set" (equal? (peer-wire-normalize "#(set #vu8(1 2 255))") "#(set #u8(1 2 255))"))
      (check "canonical iam" (equal? (peer-wire-normalize "#(iam 5 #false)") "#(iam 5 #f)"))
      (check "canonical whitespace" (equal? (peer-wire-normalize "#(set  #vu8(1 2\n255))") "#(set #u8(1 2 255))"))
      (check "canonical true" (equal? (peer-wire-normalize "#true") "#t"))
      (let ((deep (let loop ((i 0) (s "1"))
                    (if (= i 50) s (loop (+ i 1) (string-append "#(" s ")"))))))
        (for-each
         (lambda (bad)
           (check-raises (string-append "normalize of malformed " (if (> (string-length bad) 20) (substring bad 0 20) bad))
                         (lambda () (peer-wire-normalize bad))))
         (list "#(set" "(1 2)" "#u8(256)" "" "#(set #u8(1)) junk" "\"unterminated"
               "#(ref 1.5)" "#u8(1 -2)" deep)))
      (check-raises "peer-wire-normalize of a non-string" (lambda () (peer-wire-normalize 42))))))

;;; ---------------------------------------------------------------------------------------
;;; Built-in encrypted TCP: 10 peers on loopback

(define (check-bags who peers publishers-a publishers-b publisher-c)
  ;; A from several peers, B from fewer, C from one: popular order is A first.
  (let ((key (peer-random-uid))
        (a (peer-random-uid))
        (b (peer-random-uid))
        (c (peer-random-uid))
        (reader (list-ref peers (- (length peers) 1))))
    (for-each (lambda (p) (peer-bag-publish p key a)) publishers-a)
    (for-each (lambda (p) (peer-bag-publish p key b)) publishers-b)
    (peer-bag-publish publisher-c key c)
    (let ((popular (peer-bag-popular reader key)))
      (check (string-append who "bag-popular holds the three values")
             (and (vector? popular) (= (vector-length popular) 3)
                  (vector-member? popular a) (vector-member? popular b) (vector-member? popular c)))
      (check (string-append who "bag-popular puts the most published first")
             (and (> (vector-length popular) 0) (equal? (vector-ref popular 0) a))))
    (let ((one (peer-bag-popular reader key 1)))
      (check (string-append who "bag-popular with cap 1") (equal? one (vector a))))
    (let ((recent (peer-bag-recent reader key)))
      (check (string-append who "bag-recent holds the three values")
             (and (= (vector-length recent) 3)
                  (vector-member? recent a) (vector-member? recent b) (vector-member? recent c))))
    (let ((sample (peer-bag-sample reader key 2)))
      (check (string-append who "bag-sample with cap 2 gives 2 of the values")
             (and (= (vector-length sample) 2)
                  (vector-every? (lambda (x) (or (equal? x a) (equal? x b) (equal? x c))) sample)
                  (not (equal? (vector-ref sample 0) (vector-ref sample 1))))))
    (check (string-append who "bag of an unknown key is empty")
           (equal? (peer-bag-popular reader (peer-random-uid)) (vector)))
    ;; The -at variants ask one peer for its local answer: the nearest peer holds the bag.
    (let ((holder (peer-uid (nearest-peer peers key))))
      (let ((popular (peer-bag-popular-at reader holder key)))
        (check (string-append who "bag-popular-at the nearest peer")
               (and (> (vector-length popular) 0) (equal? (vector-ref popular 0) a)
                    (vector-member? popular b) (vector-member? popular c))))
      (let ((recent (peer-bag-recent-at reader holder key)))
        (check (string-append who "bag-recent-at the nearest peer")
               (and (= (vector-length recent) 3) (vector-member? recent c))))
      (let ((sample (peer-bag-sample-at reader holder key 3)))
        (check (string-append who "bag-sample-at the nearest peer")
               (and (= (vector-length sample) 3) (vector-member? sample a)
                    (vector-member? sample b) (vector-member? sample c)))))
    (let ((stranger (peer-random-uid)))
      (check-raises (string-append who "bag-popular-at an unknown uid")
                    (lambda () (peer-bag-popular-at reader stranger key)))
      (check-raises (string-append who "bag-recent-at an unknown uid")
                    (lambda () (peer-bag-recent-at reader stranger key)))
      (check-raises (string-append who "bag-sample-at an unknown uid")
                    (lambda () (peer-bag-sample-at reader stranger key))))))

(define (check-namespaces who peers)
  (let* ((kp (keypair-list))
         (secret (car kp))
         (public (cadr kp))
         (key (peer-random-uid))
         (v1 (peer-random-uid))
         (v2 (peer-random-uid))
         (writer (list-ref peers 1))
         (reader (list-ref peers (- (length peers) 1)))
         (sig1 (peer-namespace-set writer secret public key v1)))
    (check (string-append who "namespace-set returns a 64-byte signature")
           (and (bytevector? sig1) (= (bytevector-length sig1) 64)))
    (check (string-append who "namespace-ref from another peer")
           (equal? (peer-namespace-ref reader public key) v1))
    (check (string-append who "namespace-ref pinned to the signature")
           (equal? (peer-namespace-ref reader public key sig1) v1))
    (check (string-append who "namespace-ref of an unknown key")
           (not (peer-namespace-ref reader public (peer-random-uid))))
    (check (string-append who "namespace-ref of an unknown public key")
           (not (peer-namespace-ref reader (peer-random-uid) key)))
    ;; Some peer holds it locally, and every local answer is the value or nothing.
    (let ((answers (map (lambda (p) (peer-namespace-ref-at reader (peer-uid p) public key)) peers)))
      (check (string-append who "namespace-ref-at: some peer holds the record")
             (member v1 answers))
      (check (string-append who "namespace-ref-at: answers are the value or #f")
             (let loop ((l answers))
               (or (null? l) (and (or (not (car l)) (equal? (car l) v1)) (loop (cdr l))))))
      (let ((holder (let loop ((ps peers) (as answers))
                      (if (car as) (car ps) (loop (cdr ps) (cdr as))))))
        (check (string-append who "namespace-ref-at pinned")
               (equal? (peer-namespace-ref-at reader (peer-uid holder) public key sig1) v1))
        ;; A newer set wins: plain reads see v2; pinning the old signature finds nothing.
        (let ((sig2 (peer-namespace-set (list-ref peers 2) secret public key v2)))
          (check (string-append who "namespace overwrite gives a new signature") (not (equal? sig1 sig2)))
          (check (string-append who "namespace-ref after overwrite is the newer value")
                 (equal? (peer-namespace-ref reader public key) v2))
          (check (string-append who "namespace-ref pinned to the new signature")
                 (equal? (peer-namespace-ref reader public key sig2) v2))
          ;; A replica the second write missed may still hold v1: pinned, it is v1 or nothing.
          (check (string-append who "namespace-ref pinned to the replaced signature is never the newer")
                 (let ((r (peer-namespace-ref reader public key sig1)))
                   (or (not r) (equal? r v1))))
          ;; Stores go to the nearest peers each writer's lookup finds: some peer has v2.
          (check (string-append who "namespace-ref-at after overwrite: some peer holds the newer")
                 (member v2 (map (lambda (p) (peer-namespace-ref-at reader (peer-uid p) public key))
                                 peers))))))
    (let ((other (keypair-list)))
      (check-raises (string-append who "namespace-set with a secret of another key pair")
                    (lambda () (peer-namespace-set writer (car other) public key v1))))
    (check-raises (string-append who "namespace-ref-at an unknown uid")
                  (lambda () (peer-namespace-ref-at reader (peer-random-uid) public key)))))

(define (check-values who peers)
  (let* ((writer (list-ref peers 1))
         (reader (list-ref peers (- (length peers) 1)))
         (value (peer-random-uid))
         (key (peer-set writer value)))
    (check (string-append who "peer-set returns a 32-byte key") (bytevector-of-32? key))
    (check (string-append who "peer-ref from another peer") (equal? (peer-ref reader key) value))
    (check (string-append who "peer-ref from every peer")
           (let loop ((ps peers))
             (or (null? ps) (and (equal? (peer-ref (car ps) key) value) (loop (cdr ps))))))
    (check (string-append who "peer-set of the same value elsewhere gives the same key")
           (equal? (peer-set (list-ref peers 2) (bv-copy value)) key))
    (check (string-append who "peer-set returns SHA-256 of the value")
           (equal? (peer-set writer (string->utf8* "abc")) sha256-abc))
    (check (string-append who "peer-ref of a random key is #f")
           (not (peer-ref reader (peer-random-uid))))))

(group "tcp network of 10 peers"
  (lambda ()
    (let ((peers '()))
      (with-peers
       (lambda () peers)
       (lambda ()
         (do ((i 0 (+ i 1))) ((= i 10))
           (set! peers (append peers (list (peer-open (peer-random-uid) "127.0.0.1" 0)))))
         (let ((first (car peers)))
           (check "tcp: every peer connects to the first"
                  (let loop ((ps (cdr peers)))
                    (or (null? ps)
                        (and (eq? (peer-connect (car ps) "127.0.0.1" (peer-port first)) #t)
                             (loop (cdr ps))))))
           (for-each peer-bootstrap peers)
           (check-values "tcp: " peers)
           (let* ((big (let ((b (make-bytevector peer-max-value-size 0)))
                         (do ((i 0 (+ i 1))) ((= i peer-max-value-size) b)
                           (bytevector-u8-set! b i (remainder (* i 7) 256)))))
                  (key (peer-set (list-ref peers 2) big)))
             (check "tcp: a value of peer-max-value-size bytes round-trips"
                    (equal? (peer-ref (list-ref peers 8) key) big)))
           (let ((key (peer-set (list-ref peers 3) (make-bytevector 0 0))))
             (check "tcp: the empty value's key is SHA-256 of nothing" (equal? key sha256-empty))
             (check "tcp: the empty value round-trips" (equal? (peer-ref (list-ref peers 6) key) (make-bytevector 0 0))))
           (check-bags "tcp: " peers
                       (list (list-ref peers 1) (list-ref peers 2) (list-ref peers 3)
                             (list-ref peers 4) (list-ref peers 5))
                       (list (list-ref peers 1) (list-ref peers 2))
                       (list-ref peers 3))
           (check-namespaces "tcp: " peers)
           ;; A port nobody listens on any more: connect answers #f, not an error.
           (let* ((gone (peer-open (peer-random-uid) "127.0.0.1" 0))
                  (port (peer-port gone)))
             (peer-close gone)
             (check "tcp: peer-connect to a closed port is #f"
                    (eq? (peer-connect first "127.0.0.1" port) #f)))))))))

;;; ---------------------------------------------------------------------------------------
;;; External transport: 5 peers in this process, messages moved by in-memory queues

;; A network: an association list from port to queue (a vector holding the list of waiting
;; payloads, oldest first). Every peer is at 127.0.0.1.
(define (make-network) (vector '() 0))   ; queues, delivered count

(define (network-queue net port)
  (let ((entry (assv port (vector-ref net 0))))
    (and entry (cdr entry))))

(define (network-add! net port)
  (vector-set! net 0 (cons (cons port (vector '())) (vector-ref net 0))))

(define (network-send net)
  (lambda (ip port payload)
    (let ((q (and (equal? ip "127.0.0.1") (bytevector? payload) (network-queue net port))))
      (when q
        (vector-set! net 1 (+ (vector-ref net 1) 1))
        (vector-set! q 0 (append (vector-ref q 0) (list payload)))))))

(define (network-recv net port)
  (lambda ()
    (let* ((q (network-queue net port))
           (items (vector-ref q 0)))
      (if (null? items)
          #f
          (begin (vector-set! q 0 (cdr items))
                 (car items))))))

;; The draft's 4-argument form: the address is derived from the uid.
(define (default-port uid)
  (+ 1024 (remainder (+ (* 256 (bytevector-u8-ref uid 0)) (bytevector-u8-ref uid 1)) 64000)))

(group "external transport: 5 peers on an in-memory network"
  (lambda ()
    (let ((net (make-network))
          (peers '()))
      (with-peers
       (lambda () peers)
       (lambda ()
         ;; Four peers at explicit ports below 1024, which no derived port can take.
         (do ((port 1 (+ port 1))) ((= port 5))
           (network-add! net port)
           (set! peers (append peers (list (peer (peer-random-uid) (network-recv net port)
                                                 (network-send net) 5 "127.0.0.1" port)))))
         (let* ((uid (peer-random-uid))
                (port (default-port uid)))
           (network-add! net port)
           (let ((p (peer uid (network-recv net port) (network-send net) 5)))
             (set! peers (append peers (list p)))
             (check "external: the 4-argument form is a peer" (peer? p))
             (check "external: the 4-argument form's port is derived from the uid"
                    (= (peer-port p) port))
             (check "external: peer-uid" (equal? (peer-uid p) uid))))
         (check "external: explicit port" (= (peer-port (car peers)) 1))
         (check "external: every peer connects to the first"
                (let loop ((ps (cdr peers)))
                  (or (null? ps)
                      (and (eq? (peer-connect (car ps) "127.0.0.1" 1) #t) (loop (cdr ps))))))
         (check "external: messages went through the program's send" (> (vector-ref net 1) 0))
         (for-each peer-bootstrap peers)
         (check-values "external: " peers)
         (check-bags "external: " peers
                     (list (list-ref peers 0) (list-ref peers 1) (list-ref peers 2))
                     (list (list-ref peers 3))
                     (list-ref peers 4))
         (check-namespaces "external: " peers)
         ;; No one at port 9: the request times out and connect answers #f.
         (check "external: peer-connect to an address nobody holds is #f"
                (eq? (peer-connect (car peers) "127.0.0.1" 9) #f))
         ;; While external peers live, calls on a TCP peer take the same path.
         (let* ((gone (peer-open (peer-random-uid) "127.0.0.1" 0))
                (port (peer-port gone))
                (tcp (peer-open (peer-random-uid) "127.0.0.1" 0)))
           (peer-close gone)
           (set! peers (cons tcp peers))
           (check "external: a tcp peer-connect to a closed port meanwhile is #f"
                  (eq? (peer-connect tcp "127.0.0.1" port) #f))))))))

;;; ---------------------------------------------------------------------------------------
;;; Options (an alist as peer-open's 4th argument) and data directories

;; (peer-open ...) that must raise: a peer it returns anyway is closed, so the check fails
;; without leaking it.
(define (check-open-raises name thunk)
  (check-raises name (lambda () (peer-close (thunk)))))

(group "options and data directories"
  (lambda ()
    (let* ((dir (temp-path "store-a"))
           (peers '())
           (open! (lambda (uid options)
                    (let ((p (peer-open uid "127.0.0.1" 0 options)))
                      (set! peers (cons p peers))
                      p))))
      (with-peers
       (lambda () peers)
       (lambda ()
         (let* ((p (open! #f (list (cons 'replication 5) (cons 'data-dir dir))))
                (uid (peer-uid p)))
           (check "options: peer-open with an alist and uid #f is a peer" (peer? p))
           (check "options: its peer-uid is 32 bytes" (bytevector-of-32? uid))
           (check "options: its port is bound" (> (peer-port p) 0))
           (check-open-raises "options: a second peer on a data directory in use"
                              (lambda () (peer-open #f "127.0.0.1" 0 (list (cons 'data-dir dir)))))
           (let ((text (raised-text (lambda () (peer-close (peer-open #f "127.0.0.1" 0 (list (cons 'data-dir dir))))))))
             (check "options: the busy error names peer-open" (and text (string-contains? text "peer-open"))))
           (peer-close p)
           (check-raises "peer-forget on a closed peer" (lambda () (peer-forget p (peer-random-uid))))
           (let ((q (open! #f (list (cons 'data-dir dir)))))
             (check "options: reopened with uid #f, the data directory's uid" (equal? (peer-uid q) uid))
             (peer-close q))
           (let ((q (open! uid (list (cons 'data-dir dir) (cons 'expire 60)))))
             (check "options: reopened with the same uid" (equal? (peer-uid q) uid))
             (peer-close q))
           (check-open-raises "options: another uid on that data directory"
                              (lambda () (peer-open (peer-random-uid) "127.0.0.1" 0 (list (cons 'data-dir dir)))))
           (let ((q (open! #f '())))
             (check "options: an empty alist gives a fresh uid"
                    (and (bytevector-of-32? (peer-uid q)) (not (equal? (peer-uid q) uid))))
             (peer-close q))
           (let ((q (open! (peer-random-uid) 7)))
             (check "options: an integer 4th argument is still the replication" (peer? q))
             (peer-close q))
           (for-each
            (lambda (bad)
              (check-open-raises (string-append "peer-open with options " (write-to-string bad))
                                 (lambda () (peer-open #f "127.0.0.1" 0 bad))))
            (list (list (cons 'colour 1))
                  (list (cons 'replication "5"))
                  (list (cons 'expire -1))
                  (list (cons 'republish 4294967296))
                  (list (cons 'replication 4))
                  (list (cons 'data-dir 42))
                  (list (cons 'data-dir ""))
                  (list 'expire)
                  'fast
                  "5"))
           (check-open-raises "peer-open with options and a 31-byte uid"
                              (lambda () (peer-open (bytes 31 0) "127.0.0.1" 0 '())))
           (let ((text (raised-text (lambda () (peer-close (peer-open #f "127.0.0.1" 0 (list (cons 'colour 1))))))))
             (check "options: an unknown option's error names peer-open"
                    (and text (string-contains? text "peer-open"))))))))))

;; Four peers that republish every second and whose records live two seconds: a value
;; forgotten is gone after its lifetime, one not forgotten is still there (republished).
(group "peer-forget and lifetimes"
  (lambda ()
    (let ((peers '())
          (options (list (cons 'republish 1) (cons 'expire 2))))
      (with-peers
       (lambda () peers)
       (lambda ()
         (do ((i 0 (+ i 1))) ((= i 4))
           (set! peers (append peers (list (peer-open #f "127.0.0.1" 0 options)))))
         (for-each (lambda (p) (peer-connect p "127.0.0.1" (peer-port (car peers)))) (cdr peers))
         (for-each peer-bootstrap peers)
         (let* ((writer (list-ref peers 1))
                (reader (list-ref peers 3))
                (gone (peer-random-uid))
                (kept (peer-random-uid))
                (gone-key (peer-set writer gone))
                (kept-key (peer-set writer kept)))
           (check "forget: the value is readable first" (equal? (peer-ref reader gone-key) gone))
           (check "forget: peer-forget of a stored value is #t" (eq? (peer-forget writer gone-key) #t))
           (check "forget: peer-forget again is #f" (eq? (peer-forget writer gone-key) #f))
           (check "forget: peer-forget of an unknown key is #f" (eq? (peer-forget writer (peer-random-uid)) #f))
           (check "forget: peer-forget on another peer is #f" (eq? (peer-forget reader kept-key) #f))
           (check-raises "peer-forget with a 31-byte key" (lambda () (peer-forget writer (bytes 31 0))))
           (check-raises "peer-forget of a non-peer" (lambda () (peer-forget 'peer gone-key)))
           ;; At most 20 x 250 ms: the forgotten value's lifetime is 2 s.
           (let loop ((i 0))
             (when (and (< i 20) (peer-ref reader gone-key))
               (sleep-ms 250)
               (loop (+ i 1))))
           (check "forget: a forgotten value is gone after its lifetime" (not (peer-ref reader gone-key)))
           (check "forget: a value not forgotten is still there (republished)"
                  (equal? (peer-ref reader kept-key) kept))))))))

;;; ---------------------------------------------------------------------------------------

(display passed)
(display " passed, ")
(display failed)
(display " failed")
(newline)
(exit-with-failures failed)
