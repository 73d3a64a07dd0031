;;; The libpeer Scheme test suite, written once in portable Scheme and run by Guile, Chez and
;;; Chibi. It is these files, which each runner loads in this order into one top level (the
;;; list is scheme-tests/suite-files, one name per line):
;;;   suite.scm            the harness, helpers, single peers, errors, wire conformance
;;;   suite-network.scm    networks of TCP peers, options, data directories, lifetimes
;;;   suite-transport.scm  the draft's own form (peer uid recv send replication): in-memory
;;;                        networks, peer-poll, exceptions from recv/send, two OS processes
;;;   suite-end.scm        the summary line
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
;;;   (raise obj)                 R7RS `raise` of any object (Guile's prelude binds it to
;;;                               raise-exception: Guile's own `raise` sends a signal)
;;;   (printed-error e)           how the implementation itself prints the raised object `e`
;;;                               (Guile "In procedure WHO: ...", Chez "Exception in WHO: ...",
;;;                               Chibi "ERROR in WHO: ...")
;;;   (spawn-child)               a channel to a new OS process running scheme-tests/child.scm
;;;                               under the same implementation and library (its child prelude
;;;                               gives it `parent-channel`): a socket (Guile, Chibi) or the
;;;                               child's standard input and output (Chez 9.5, no sockets)
;;;   (channel-send! ch datum)    `write` a datum to the channel, then a newline, and flush
;;;   (channel-recv ch)           a datum that has arrived, else #f at once (also at the end)
;;;   (channel-close! ch)         close it and wait (bounded) for the child to exit: #t when
;;;                               it exited with status 0
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
    (check "peer-max-external-value-size is 209689" (equal? peer-max-external-value-size 209689))
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
      ;; Host names are resolved: these cannot be names, so no resolver is asked.
      (check-raises "peer-open with ip \"not an ip\"" (lambda () (peer-open uid "not an ip" 0)))
      (check-raises "peer-open with ip \"nowhere.invalid\"" (lambda () (peer-open uid "nowhere.invalid" 0)))
      (check-raises "peer-open with ip \"999.1.1.1\"" (lambda () (peer-open uid "999.1.1.1" 0)))
      (check-raises "peer-open with a non-string ip" (lambda () (peer-open uid 127 0)))
      (check-raises "peer-open with port 70000" (lambda () (peer-open uid "127.0.0.1" 70000)))
      (check-raises "peer with a string uid" (lambda () (peer "uid" recv send 5)))
      (check-raises "peer with a 33-byte uid" (lambda () (peer (bytes 33 0) recv send 5)))
      (check-raises "peer with replication 4" (lambda () (peer uid recv send 4)))
      (check-raises "peer with replication 21" (lambda () (peer uid recv send 21)))
      (check-raises "peer with a bad ip"
                    (lambda () (peer uid recv send 5 (list (cons 'ip "bad ip") (cons 'port 4000)))))
      (check-raises "peer with an ip and no port" (lambda () (peer uid recv send 5 (list (cons 'ip "127.0.0.1")))))
      (check-raises "peer with port 70000"
                    (lambda () (peer uid recv send 5 (list (cons 'ip "127.0.0.1") (cons 'port 70000)))))
      (check-raises "peer with an unknown option" (lambda () (peer uid recv send 5 (list (cons 'colour 1)))))
      (check-raises "peer with serve fast" (lambda () (peer uid recv send 5 (list (cons 'serve 'fast)))))
      (check-raises "peer with a non-procedure on-error" (lambda () (peer uid recv send 5 (list (cons 'on-error 1)))))
      (check-raises "peer with options that are not an alist" (lambda () (peer uid recv send 5 'thread)))
      (check-raises "peer with a non-procedure recv" (lambda () (peer uid #f send 5)))
      (check-raises "peer with a non-procedure send" (lambda () (peer uid recv 'send 5))))))

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
         ;; A name resolves to nothing: #f, as for an address nobody answers at (no resolver
         ;; is asked for these two).
         (check "peer-connect to a name that cannot be one is #f" (eq? (peer-connect p "not a host" 4000) #f))
         (check "peer-connect to a .invalid name is #f" (eq? (peer-connect p "nowhere.invalid" 4000) #f))
         (check-raises "peer-connect with a non-string ip" (lambda () (peer-connect p 127 4000)))
         (check "peer-ip of a tcp peer is its bound address" (equal? (peer-ip p) "127.0.0.1"))
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
         (check-raises "peer-ip on a closed peer" (lambda () (peer-ip p)))
         (check-raises "peer-uid on a closed peer" (lambda () (peer-uid p)))
         (check-raises "peer-stats on a closed peer" (lambda () (peer-stats p)))
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
;;; One error shape: who, status (number and symbol) and message, in every implementation

;; What `thunk` raised, or #f when it returned.
(define (caught thunk)
  (guard (e (#t e))
    (thunk)
    #f))

;; How many times `sub` occurs in `s`.
(define (occurrences s sub)
  (let ((n (string-length s)) (m (string-length sub)))
    (let loop ((i 0) (count 0))
      (cond ((> (+ i m) n) count)
            ((string=? (substring s i (+ i m)) sub) (loop (+ i m) (+ count 1)))
            (else (loop (+ i 1) count))))))

;; `e` is a library error from `who` with status `symbol`, whose message and printed form
;; name no C function, and whose printed form names `who` exactly once.
(define (check-error-shape name e who symbol)
  (check (string-append name ": a peer error") (and e (peer-error? e)))
  (when (and e (peer-error? e))
    (let ((message (peer-error-message e))
          (printed (printed-error e))
          (proc (symbol->string who)))
      (check (string-append name ": who is " proc) (eq? (peer-error-who e) who))
      (check (string-append name ": status symbol " (symbol->string symbol)) (eq? (peer-error-symbol e) symbol))
      (check (string-append name ": status number is negative")
             (and (exact-integer? (peer-error-status e)) (< (peer-error-status e) 0)))
      (check (string-append name ": message is a non-empty string")
             (and (string? message) (> (string-length message) 0)))
      (check (string-append name ": message names no C function: " message) (not (string-contains? message "peer_")))
      (check (string-append name ": printed form names " proc " once: " printed) (= (occurrences printed proc) 1))
      (check (string-append name ": printed form names no C function: " printed) (not (string-contains? printed "peer_")))
      (check (string-append name ": printed form holds the message") (string-contains? printed message)))))

(group "one error shape"
  (lambda ()
    (let ((uid (peer-random-uid)))
      ;; Checked by libpeer (peer_new): its reason, under the Scheme procedure's name.
      (let ((e (caught (lambda () (peer-open uid "127.0.0.1" 0 4)))))
        (check-error-shape "replication 4" e 'peer-open 'invalid)
        (check "replication 4: the message gives the range"
               (and e (peer-error? e) (string-contains? (peer-error-message e) "5..20"))))
      ;; Checked by the library itself, with the same range in the message.
      (let ((e (caught (lambda () (peer-open uid "127.0.0.1" 0 5.0)))))
        (check-error-shape "replication 5.0" e 'peer-open 'invalid)
        (check "replication 5.0: the message gives the range 5..20"
               (and e (peer-error? e) (string-contains? (peer-error-message e) "5..20"))))
      (check-error-shape "an unresolvable ip" (caught (lambda () (peer-open uid "not an ip" 0))) 'peer-open 'invalid)
      (check-error-shape "a 31-byte uid" (caught (lambda () (peer-open (bytes 31 0) "127.0.0.1" 0))) 'peer-open 'invalid)
      (check-error-shape "peer replication 21" (caught (lambda () (peer uid (lambda () #f) (lambda (i p d) #f) 21)))
                         'peer 'invalid)
      (let ((p (peer-open uid "127.0.0.1" 0)))
        (check-error-shape "too large" (caught (lambda () (peer-set p (bytes (+ peer-max-value-size 1) 0))))
                           'peer-set 'too-large)
        (check-error-shape "a short key" (caught (lambda () (peer-ref p (bytes 3 0)))) 'peer-ref 'invalid)
        (check-error-shape "a bag cap of -1" (caught (lambda () (peer-bag-sample p uid -1))) 'peer-bag-sample 'invalid)
        (check-error-shape "peer-poll of a tcp peer" (caught (lambda () (peer-poll p))) 'peer-poll 'invalid)
        (let ((other (keypair-list)) (mine (keypair-list)))
          (check-error-shape "a secret of another key pair"
                             (caught (lambda () (peer-namespace-set p (car other) (cadr mine) uid uid)))
                             'peer-namespace-set 'key-mismatch))
        (peer-close p)
        (check-error-shape "a closed peer" (caught (lambda () (peer-ref p uid))) 'peer-ref 'closed)
        (check-error-shape "peer-uid of a closed peer" (caught (lambda () (peer-uid p))) 'peer-uid 'closed))
      (check-error-shape "not a peer" (caught (lambda () (peer-bootstrap 'peer))) 'peer-bootstrap 'invalid)
      ;; Two errors of one status carry the same number, from libpeer's one table.
      (let ((a (caught (lambda () (peer-open uid "127.0.0.1" 0 4))))
            (b (caught (lambda () (peer-ref 'peer uid)))))
        (check "one status, one number"
               (and (peer-error? a) (peer-error? b) (= (peer-error-status a) (peer-error-status b)))))
      (check "peer-error? of a string" (not (peer-error? "invalid")))
      (check "peer-error? of the program's own raise"
             (not (peer-error? (caught (lambda () (raise (list 'mine))))))))))

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

