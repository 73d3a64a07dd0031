;;; (peer): Guile binding of libpeer, a Kademlia-style encrypted peer-to-peer network.
;;;
;;; Thin layer over the C ABI (include/peer.h) through (system foreign): no C glue. The
;;; concerns live in their own modules:
;;;   (peer ffi)        libpeer's symbols and status table
;;;   (peer errors)     the one error shape, and the argument checks
;;;   (peer handles)    the peer record, closing, the guardian, the registry
;;;   (peer scratch)    per-thread memory for arguments and results
;;;   (peer options)    the options alists of `peer-open` and `peer`
;;;   (peer envelope)   envelopes between libpeer's text and Scheme data
;;;   (peer transport)  the pump, the library thread, `peer-poll`, blocking calls
;;;   (peer worker)     the thread pool blocking calls run on while the caller pumps
;;; This module holds the procedures themselves.

(define-module (peer)
  #:use-module (system foreign)
  #:use-module (rnrs bytevectors)
  #:use-module (peer ffi)
  #:use-module (peer errors)
  #:use-module (peer handles)
  #:use-module (peer scratch)
  #:use-module (peer options)
  #:use-module (peer transport)
  #:re-export (peer? peer-poll
               peer-error? peer-error-who peer-error-status peer-error-symbol peer-error-message)
  #:export (peer peer-open peer-close peer-port peer-ip peer-uid peer-forget
            peer-connect peer-bootstrap peer-set peer-ref
            peer-bag-publish
            peer-bag-popular peer-bag-popular-at
            peer-bag-recent peer-bag-recent-at
            peer-bag-sample peer-bag-sample-at
            peer-namespace-set peer-namespace-ref peer-namespace-ref-at
            peer-keypair peer-random-uid peer-max-value-size peer-max-external-value-size
            peer-wire-normalize peer-stats))

;; Largest value `peer-set` accepts (262138): a `set` message must fit in 1 MiB.
(define peer-max-value-size max-value-size)
;; The same for peers made by `peer` (209689): every envelope they send fits in 1 MiB.
(define peer-max-external-value-size max-external-value-size)

(define default-replication 5)
(define default-bag-cap 20)

;; A blocking C call on peer `p`: the call (arguments included) is evaluated on whichever
;; thread runs it, so status and reason come back from that thread.
(define-syntax-rule (call-blocking who p (proc arg ...))
  (check who (blocking p (lambda () (outcome (proc arg ...))))))

;;; ---------------------------------------------------------------------------------------
;;; Making peers

;; `arg`: the replication, or for %new-with a struct peer_options pointer. uid #f: NULL;
;; ip #f: NULL (an external peer's address derived from its uid).
(define (new-handle who maker uid ip port arg)
  (drain-guardian!)
  (with-scratch s
    (check who (outcome (maker (if uid (put! s 0 uid) %null-pointer)
                               (if ip (string->pointer ip "UTF-8") %null-pointer)
                               port arg (scratch-out s))))
    (scratch-read-pointer s)))

;; peer_options_init_sized with this layout's size (libpeer writes nothing past it), then the
;; fields from `peer-open`'s options alist (see (peer options)).
(define (new-handle-with who uid ip port options)
  (when uid (check-bytes who "uid" uid key-len))
  (let* ((opts (options-fields options (lambda (what x) (invalid who what x))))
         (dir* (if (cadr opts) (string->pointer (cadr opts) "UTF-8") %null-pointer))
         (types (list size_t uint32 '* uint32 uint32 uint32)) ; struct peer_options
         (init (make-bytevector (sizeof types) 0))
         (size (begin (%options-init (bytevector->pointer init) (sizeof types))
                      (car (parse-c-struct (bytevector->pointer init) types))))
         (o* (make-c-struct types (cons* size (car opts) dir* (cddr opts))))
         (ptr (new-handle who %new-with uid ip port o*)))
    (keep-alive dir*)                   ; the struct's copy of this pointer is not traced
    ptr))

;; A call the compiler cannot see through (the variable is assigned, so never inlined):
;; whatever is passed to it stays reachable until the call.
(define keep-alive #f)
(set! keep-alive (lambda (x) x))

;; The 4th argument: the replication (a number), or an alist of options (uid may be #f).
(define* (peer-open uid ip port #:optional (options default-replication))
  (check-ip 'peer-open ip)
  (check-port 'peer-open port)
  (register!
   (make-peer (if (number? options)
                  (begin (check-bytes 'peer-open "uid" uid key-len)
                         (check-replication 'peer-open options)
                         (new-handle 'peer-open %new uid ip port options))
                  (new-handle-with 'peer-open uid ip port options))
              'tcp #f #f #f)))

;; The draft's form, on the program's transport; options: see (peer options).
(define* (peer uid recv send replication #:optional (options '()))
  (check-bytes 'peer "uid" uid key-len)
  (check-procedure 'peer "recv" recv)
  (check-procedure 'peer "send" send)
  (check-replication 'peer replication)
  (let* ((opts (external-options options (lambda (what x) (invalid 'peer what x))))
         (ptr (new-handle 'peer %new-external uid (car opts) (or (cadr opts) 0) replication)))
    (register-external! (make-peer ptr (caddr opts) recv send (cadddr opts)))))

(define (peer-close p)
  (unless (peer? p) (invalid 'peer-close "expected a peer" p))
  (close! p))

;;; ---------------------------------------------------------------------------------------
;;; Procedures

(define (peer-port p)
  (%port (handle 'peer-port p)))

;; The peer's address: the bound one for TCP, its address on the program's network else.
(define (peer-ip p)
  (let ((ptr (handle 'peer-ip p)))
    (with-scratch s
      (check 'peer-ip (outcome (%address ptr (slot s 0) (slot s 1))))
      (c-ip-string (scratch-bv s)))))

(define (peer-uid p)
  (let ((ptr (handle 'peer-uid p)))
    (with-scratch s
      (check 'peer-uid (outcome (%uid ptr (slot s 0))))
      (get s 0 key-len))))

;; Stop republishing what `p` stored under `key`: #t, or #f when nothing was.
(define (peer-forget p key)
  (let ((ptr (handle 'peer-forget p)))
    (check-bytes 'peer-forget "key" key key-len)
    ;; Local (no message to wait for): on this thread, never pumping.
    (with-scratch s
      (zero? (check 'peer-forget (outcome (%forget ptr (put! s 0 key))))))))

;; `host`: an IP address or a name libpeer resolves; #f when nobody answers (or no such name).
(define (peer-connect p host port)
  (let ((ptr (handle 'peer-connect p)))
    (check-ip 'peer-connect host)
    (check-port 'peer-connect port)
    (let* ((host* (string->pointer host "UTF-8"))
           (r (blocking p (lambda () (outcome (%connect ptr host* port))))))
      (keep-alive host*)
      (cond ((eqv? r 0) #t)
            ((and (pair? r) (= (car r) status-unreachable)) #f)
            (else (check 'peer-connect r) #f)))))

(define (peer-bootstrap p)
  (let ((ptr (handle 'peer-bootstrap p)))
    (call-blocking 'peer-bootstrap p (%bootstrap ptr))
    (if #f #f)))

(define (peer-set p value)
  (let ((ptr (handle 'peer-set p)))
    (unless (bytevector? value)
      (invalid 'peer-set "value must be a bytevector" value))
    (with-scratch s
      (call-blocking 'peer-set p (%set ptr (input-pointer s value) (bytevector-length value) (slot s 0)))
      (get s 0 key-len))))

(define (peer-ref p key)
  (let ((ptr (handle 'peer-ref p)))
    (check-bytes 'peer-ref "key" key key-len)
    (with-scratch s
      (let ((rc (call-blocking 'peer-ref p (%ref ptr (put! s 0 key) (scratch-out s) (scratch-len s)))))
        (and (zero? rc) (take-bytes! (scratch-read-pointer s) (scratch-read-size s)))))))

(define (peer-bag-publish p key value)
  (let ((ptr (handle 'peer-bag-publish p)))
    (check-bytes 'peer-bag-publish "key" key key-len)
    (check-bytes 'peer-bag-publish "value" value key-len)
    (with-scratch s
      (call-blocking 'peer-bag-publish p (%bag-publish ptr (put! s 0 key) (put! s 1 value))))
    (if #f #f)))

;; Values come back packed, 32 bytes each: split into fresh bytevectors.
(define (unpack-values buf offset n)
  (let ((v (make-vector n)))
    (do ((i 0 (+ i 1))) ((= i n) v)
      (let ((one (make-bytevector key-len)))
        (bytevector-copy! buf (+ offset (* i key-len)) one 0 key-len)
        (vector-set! v i one)))))

;; `call` gets the output buffer's pointer and returns an outcome.
(define (bag-query who p s cap call)
  (check-cap who cap)
  (let* ((bytes (* cap key-len))
         (own (and (> bytes big-size) (make-bytevector bytes 0))))
    (check who (blocking p (lambda () (call (if own (bytevector->pointer own) (scratch-big s))))))
    (let ((n (min cap (scratch-read-size s))))
      (if own
          (unpack-values own 0 n)
          (unpack-values (scratch-bv s) big-offset n)))))

(define (bag-here who proc p key cap)
  (let ((ptr (handle who p)))
    (check-bytes who "key" key key-len)
    (with-scratch s
      (let ((key* (put! s 0 key)))
        (bag-query who p s cap
                   (lambda (out) (outcome (proc ptr key* out cap (scratch-len s)))))))))

(define (bag-at who proc p uid key cap)
  (let ((ptr (handle who p)))
    (check-bytes who "uid" uid key-len)
    (check-bytes who "key" key key-len)
    (with-scratch s
      (let ((uid* (put! s 0 uid))
            (key* (put! s 1 key)))
        (bag-query who p s cap
                   (lambda (out) (outcome (proc ptr uid* key* out cap (scratch-len s)))))))))

(define* (peer-bag-popular p key #:optional (cap default-bag-cap))
  (bag-here 'peer-bag-popular %bag-popular p key cap))
(define* (peer-bag-recent p key #:optional (cap default-bag-cap))
  (bag-here 'peer-bag-recent %bag-recent p key cap))
(define* (peer-bag-sample p key #:optional (cap default-bag-cap))
  (bag-here 'peer-bag-sample %bag-sample p key cap))
(define* (peer-bag-popular-at p uid key #:optional (cap default-bag-cap))
  (bag-at 'peer-bag-popular-at %bag-popular-at p uid key cap))
(define* (peer-bag-recent-at p uid key #:optional (cap default-bag-cap))
  (bag-at 'peer-bag-recent-at %bag-recent-at p uid key cap))
(define* (peer-bag-sample-at p uid key #:optional (cap default-bag-cap))
  (bag-at 'peer-bag-sample-at %bag-sample-at p uid key cap))

(define (peer-namespace-set p secret public key value)
  (let ((ptr (handle 'peer-namespace-set p)))
    (check-bytes 'peer-namespace-set "secret" secret key-len)
    (check-bytes 'peer-namespace-set "public key" public key-len)
    (check-bytes 'peer-namespace-set "key" key key-len)
    (check-bytes 'peer-namespace-set "value" value key-len)
    (with-scratch s
      (call-blocking 'peer-namespace-set p
                     (%ns-set ptr (put! s 0 secret) (put! s 1 public) (put! s 2 key) (put! s 3 value)
                              (slot s 4)))
      (get s 4 signature-len))))

;; With a signature: only that exact record (one version) is accepted. Slot 5 gets the value.
(define* (peer-namespace-ref p public key #:optional signature)
  (let ((ptr (handle 'peer-namespace-ref p)))
    (check-bytes 'peer-namespace-ref "public key" public key-len)
    (check-bytes 'peer-namespace-ref "key" key key-len)
    (when signature (check-bytes 'peer-namespace-ref "signature" signature signature-len))
    (with-scratch s
      (let ((rc (if signature
                    (call-blocking 'peer-namespace-ref p
                                   (%ns-ref-pinned ptr (put! s 0 public) (put! s 1 key)
                                                   (put! s 2 signature) (slot s 5)))
                    (call-blocking 'peer-namespace-ref p
                                   (%ns-ref ptr (put! s 0 public) (put! s 1 key) (slot s 5) %null-pointer)))))
        (and (zero? rc) (get s 5 key-len))))))

(define* (peer-namespace-ref-at p uid public key #:optional signature)
  (let ((ptr (handle 'peer-namespace-ref-at p)))
    (check-bytes 'peer-namespace-ref-at "uid" uid key-len)
    (check-bytes 'peer-namespace-ref-at "public key" public key-len)
    (check-bytes 'peer-namespace-ref-at "key" key key-len)
    (when signature (check-bytes 'peer-namespace-ref-at "signature" signature signature-len))
    (with-scratch s
      (let ((rc (if signature
                    (call-blocking 'peer-namespace-ref-at p
                                   (%ns-ref-at-pinned ptr (put! s 0 uid) (put! s 1 public) (put! s 2 key)
                                                      (put! s 3 signature) (slot s 5)))
                    (call-blocking 'peer-namespace-ref-at p
                                   (%ns-ref-at ptr (put! s 0 uid) (put! s 1 public) (put! s 2 key)
                                               (slot s 5) %null-pointer)))))
        (and (zero? rc) (get s 5 key-len))))))

(define (peer-keypair)
  (let ((pair (with-scratch s
                (%keypair (slot s 0) (slot s 1))
                (cons (get s 0 key-len) (get s 1 key-len)))))
    (values (car pair) (cdr pair))))

(define (peer-random-uid)
  (with-scratch s
    (%random-uid (slot s 0))
    (get s 0 key-len)))

;; Every figure of peer_stats_list, in its order, as ((contacts . 12) (values . 3) ...). Local,
;; on this thread: no message to wait for. The list grows with the routing table: ask its
;; length (cap 0), fetch that many, and if it grew in between fetch once more, larger.
(define (peer-stats p)
  (let ((ptr (handle 'peer-stats p)))
    (with-scratch s
      (let* ((n0 (cdr (stats-fetch ptr s 0)))
             (got (stats-fetch ptr s n0))
             (got (if (> (cdr got) n0) (stats-fetch ptr s (cdr got)) got)))
        (stats-alist got)))))

;; struct peer_stat { const char *name; uint64_t value; }
(define stat-size (sizeof (list '* uint64)))
(define stat-value-offset (- stat-size 8))   ; the uint64 ends the struct, whatever the padding

;; Room for `cap` entries, filled by peer_stats_list: (buffer . total), the buffer (#f when
;; cap is 0) holding the first min(cap, total) entries.
(define (stats-fetch ptr s cap)
  (let ((buf (and (> cap 0) (make-bytevector (* cap stat-size) 0))))
    (check 'peer-stats
           (outcome (%stats-list ptr (if buf (bytevector->pointer buf) %null-pointer) cap
                                 (scratch-len s))))
    (cons buf (scratch-read-size s))))

;; The entries a fetch got, as an alist; the names are libpeer's static strings.
(define (stats-alist got)
  (let* ((buf (car got))
         (n (if buf (min (cdr got) (quotient (bytevector-length buf) stat-size)) 0)))
    (map (lambda (i)
           (let* ((at (* i stat-size))
                  (name (make-pointer (bytevector-uint-ref buf at (native-endianness) ptr-size))))
             (cons (string->symbol (c-string name))
                   (bytevector-u64-native-ref buf (+ at stat-value-offset)))))
         (iota n))))

;; Diagnostic for the conformance tests: libpeer's reader, then its canonical writer.
(define (peer-wire-normalize text)
  (unless (string? text)
    (invalid 'peer-wire-normalize "text must be a string" text))
  (let ((bytes (string->utf8 text)))
    (with-scratch s
      (check 'peer-wire-normalize
             (outcome (%wire-normalize (input-pointer s bytes) (bytevector-length bytes)
                                       (scratch-out s) (scratch-len s))))
      (let* ((n (scratch-read-size s))
             (ptr (scratch-read-pointer s))
             (copy (if (zero? n) (make-bytevector 0) (bytevector-copy (pointer->bytevector ptr n)))))
        ;; The buffer carries a NUL after the text: free all len+1 bytes.
        (%bytes-free ptr (+ n 1))
        (utf8->string copy)))))
