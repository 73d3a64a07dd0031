;;; (peer): Guile binding of libpeer, a Kademlia-style encrypted peer-to-peer network.
;;;
;;; Thin layer over the C ABI (include/peer.h) through (system foreign): no C glue.
;;; - Every symbol is looked up once, at load time.
;;; - A handle is a record whose pointer lives in an atomic box; `peer-close` and the
;;;   guardian both go through `close!`, which swaps the box to #f first, so the C handle
;;;   is freed exactly once whoever gets there first.
;;; - Bytes returned by the library are copied into fresh bytevectors before the library's
;;;   buffer is freed: Scheme never holds C-owned memory.
;;; - Errors are &error exceptions whose message says who failed, libpeer's own
;;;   explanation (peer_last_error, read on the thread that made the call) and the status.
;;; - External transport: `(peer uid recv send replication [ip port])` makes a peer without
;;;   sockets whose messages the program moves. While any such peer is alive, every blocking
;;;   call runs on another thread and the calling thread pumps all live external peers until
;;;   that call returns, so `send`/`recv` only ever run on a thread that is making a call.

(define-module (peer)
  #:use-module (system foreign)
  #:use-module (rnrs bytevectors)
  #:use-module (srfi srfi-9)
  #:use-module (srfi srfi-9 gnu)
  #:use-module (ice-9 atomic)
  #:use-module (ice-9 exceptions)
  #:use-module (ice-9 threads)
  #:use-module (peer worker)
  #:use-module (peer options)
  #:export (peer peer-open peer-close peer? peer-port peer-uid peer-forget
            peer-connect peer-bootstrap peer-set peer-ref
            peer-bag-publish
            peer-bag-popular peer-bag-popular-at
            peer-bag-recent peer-bag-recent-at
            peer-bag-sample peer-bag-sample-at
            peer-namespace-set peer-namespace-ref peer-namespace-ref-at
            peer-keypair peer-random-uid peer-max-value-size peer-wire-normalize))

;;; ---------------------------------------------------------------------------------------
;;; The library and its symbols

;; LIBPEER_DIR names the directory holding libpeer.so; otherwise the loader's search path.
(define libpeer
  (let ((dir (getenv "LIBPEER_DIR")))
    (if (and dir (not (string-null? dir)))
        (dynamic-link (string-append dir "/libpeer.so"))
        (dynamic-link "libpeer"))))

(define (c-proc ret name args)
  (pointer->procedure ret (dynamic-func name libpeer) args))

(define %new          (c-proc int "peer_new" (list '* '* uint16 uint32 '*)))
(define %new-external (c-proc int "peer_new_external" (list '* '* uint16 uint32 '*)))
(define %new-with     (c-proc int "peer_new_with" (list '* '* uint16 '* '*)))
(define %options-init (c-proc void "peer_options_init" (list '*)))
(define %forget       (c-proc int "peer_forget" (list '* '*)))
(define %free         (c-proc void "peer_free" (list '*)))
(define %port         (c-proc uint16 "peer_port" (list '*)))
(define %uid          (c-proc int "peer_uid" (list '* '*)))
(define %connect      (c-proc int "peer_connect" (list '* '* uint16)))
(define %bootstrap    (c-proc int "peer_bootstrap" (list '*)))
(define %set          (c-proc int "peer_set" (list '* '* size_t '*)))
(define %ref          (c-proc int "peer_ref" (list '* '* '* '*)))
(define %bytes-free   (c-proc void "peer_bytes_free" (list '* size_t)))
(define %bag-publish  (c-proc int "peer_bag_publish" (list '* '* '*)))
(define %bag-popular     (c-proc int "peer_bag_popular" (list '* '* '* size_t '*)))
(define %bag-popular-at  (c-proc int "peer_bag_popular_at" (list '* '* '* '* size_t '*)))
(define %bag-recent      (c-proc int "peer_bag_recent" (list '* '* '* size_t '*)))
(define %bag-recent-at   (c-proc int "peer_bag_recent_at" (list '* '* '* '* size_t '*)))
(define %bag-sample      (c-proc int "peer_bag_sample" (list '* '* '* size_t '*)))
(define %bag-sample-at   (c-proc int "peer_bag_sample_at" (list '* '* '* '* size_t '*)))
(define %ns-set          (c-proc int "peer_namespace_set" (list '* '* '* '* '* '*)))
(define %ns-ref          (c-proc int "peer_namespace_ref" (list '* '* '* '* '*)))
(define %ns-ref-at       (c-proc int "peer_namespace_ref_at" (list '* '* '* '* '* '*)))
(define %ns-ref-pinned   (c-proc int "peer_namespace_ref_pinned" (list '* '* '* '* '*)))
(define %ns-ref-at-pinned (c-proc int "peer_namespace_ref_at_pinned" (list '* '* '* '* '* '*)))
(define %keypair      (c-proc void "peer_keypair" (list '* '*)))
(define %random-uid   (c-proc void "peer_random_uid" (list '*)))
(define %strerror     (c-proc '* "peer_strerror" (list int)))
(define %last-error   (c-proc '* "peer_last_error" '()))
(define %status-symbol (c-proc '* "peer_status_symbol" (list int)))
(define %status-count (c-proc size_t "peer_status_count" '()))
(define %status-codes (c-proc int "peer_status_codes" (list '* size_t '*)))
(define %max-value-size (c-proc size_t "peer_max_value_size" '()))
(define %ext-push     (c-proc int "peer_ext_push" (list '* '* size_t)))
(define %ext-pop      (c-proc int "peer_ext_pop" (list '* uint32 '* '* '* '*)))
(define %wire-normalize (c-proc int "peer_wire_normalize" (list '* size_t '* '*)))

;; Largest value `peer-set` accepts (262138): a `set` message must fit in 1 MiB.
(define peer-max-value-size (%max-value-size))

(define key-len 32)
(define signature-len 64)
(define ptr-size (sizeof '*))
(define size-t-size (sizeof size_t))
(define default-replication 5)
(define default-bag-cap 20)

;;; ---------------------------------------------------------------------------------------
;;; Errors

(define (raise-peer-error who status text)
  (raise-exception
   (make-exception (make-error)
                   (make-exception-with-origin who)
                   (make-exception-with-message
                    (format #f "~a: ~a (status ~a)" who text status)))))

(define (c-string ptr)
  (if (null-pointer? ptr) "" (pointer->string ptr -1 "UTF-8")))

;; libpeer's statuses as ((symbol . number) ...), read from the library once at load time
;; (peer_status_codes, peer_status_symbol), so no status number is copied here.
(define status-table
  (let* ((n (%status-count))
         (int-size (sizeof int))
         (codes (make-bytevector (* (max n 1) int-size) 0))
         (count (make-bytevector size-t-size 0)))
    (unless (zero? (%status-codes (bytevector->pointer codes) n (bytevector->pointer count)))
      (error "peer: cannot read libpeer's status codes" (c-string (%last-error))))
    (map (lambda (i)
           (let ((code (bytevector-sint-ref codes (* i int-size) (native-endianness) int-size)))
             (cons (string->symbol (pointer->string (%status-symbol code))) code)))
         (iota (bytevector-uint-ref count 0 (native-endianness) size-t-size)))))

;; The number of the status named `symbol`.
(define (status-code symbol)
  (let ((entry (assq symbol status-table)))
    (unless entry (error "peer: libpeer has no status" symbol))
    (cdr entry)))

(define status-invalid (status-code 'invalid))
(define status-closed (status-code 'closed))
(define status-unreachable (status-code 'unreachable))

;; What went wrong, as libpeer explains it; its fixed status name when it says nothing.
;; Must run on the thread that made the failing call (the message is thread-local).
(define (error-text status)
  (let ((text (c-string (%last-error))))
    (if (string-null? text) (c-string (%strerror status)) text)))

;; A C call's outcome: its status when >= 0, else (status . text) captured on the same thread.
(define (outcome status)
  (if (< status 0) (cons status (error-text status)) status))

(define (check who result)
  (if (pair? result)
      (raise-peer-error who (car result) (cdr result))
      result))

(define (invalid who what)
  (raise-peer-error who status-invalid (string-append "invalid argument: " what)))

;; An argument as an error message shows it: never a whole large bytevector.
(define (describe x)
  (if (bytevector? x)
      (format #f "a ~a-byte bytevector" (bytevector-length x))
      (let ((text (format #f "~s" x)))
        (if (> (string-length text) 60) (string-append (substring text 0 60) "...") text))))

(define (check-bytes who name bv len)
  (unless (and (bytevector? bv) (= (bytevector-length bv) len))
    (invalid who (format #f "~a must be a ~a-byte bytevector, got ~a" name len (describe bv)))))

(define (check-ip who ip)
  (unless (and (string? ip) (not (string-index ip #\nul)))
    (invalid who (format #f "ip must be a string, got ~a" (describe ip)))))

(define (check-port who port)
  (unless (and (exact-integer? port) (<= 0 port 65535))
    (invalid who (format #f "port must be an integer in 0..65535, got ~a" (describe port)))))

(define (check-replication who r)
  ;; Range 5..=20 is libpeer's to check (with its own message); the type is ours.
  (unless (and (exact-integer? r) (<= 0 r #xffffffff))
    (invalid who (format #f "replication must be an integer in 5..20, got ~a" (describe r)))))

(define (check-cap who cap)
  (unless (and (exact-integer? cap) (<= 0 cap 1000000))
    (invalid who (format #f "cap must be a non-negative integer, got ~a" (describe cap)))))

;;; ---------------------------------------------------------------------------------------
;;; Handles

(define-record-type <peer>
  (make-peer box external? recv send)
  peer?
  (box peer-box)                        ; atomic box: the C handle, or #f once closed
  (external? peer-external?)
  (recv peer-recv)
  (send peer-send))

(set-record-type-printer!
 <peer>
 (lambda (p port)
   (let ((ptr (atomic-box-ref (peer-box p))))
     (format port "#<peer ~a ~a>"
             (if (peer-external? p) "external" "tcp")
             (if ptr (%port ptr) "closed")))))

;; The C handle of an open peer; raises when it has been closed.
(define (handle who p)
  (unless (peer? p) (invalid who (format #f "not a peer: ~a" (describe p))))
  (or (atomic-box-ref (peer-box p))
      (raise-peer-error who status-closed "peer is closed")))

;; Unreachable peers are closed after a collection (and whenever a peer is made).
(define guardian (make-guardian))

;; Live external peers: weak, so an unreachable one can still be collected; the count says
;; whether blocking calls must pump at all (cheap to read on every call).
(define external-peers (make-weak-key-hash-table))
(define external-mutex (make-mutex))
(define external-count (make-atomic-box 0))

(define (atomic-add! box n)
  (let loop ((old (atomic-box-ref box)))
    (let ((seen (atomic-box-compare-and-swap! box old (+ old n))))
      (unless (eqv? seen old) (loop seen)))))

;; Idempotent: whoever swaps the pointer out frees it; everyone else sees #f.
(define (close! p)
  (let ((ptr (atomic-box-swap! (peer-box p) #f)))
    (when ptr
      (when (peer-external? p) (atomic-add! external-count -1))
      (%free ptr))))

(define (drain-guardian!)
  (let loop ()
    (let ((p (guardian)))
      (when p (close! p) (loop)))))

(add-hook! after-gc-hook drain-guardian!)

(define (register! p)
  (guardian p)
  (when (peer-external? p)
    (with-mutex external-mutex
      ;; Drop the entries of peers closed explicitly but still referenced elsewhere.
      (for-each (lambda (q) (hash-remove! external-peers q))
                (hash-fold (lambda (q _ acc) (if (atomic-box-ref (peer-box q)) acc (cons q acc)))
                           '() external-peers))
      (hash-set! external-peers p #t))
    (atomic-add! external-count 1))
  p)

(define (live-external-peers)
  (with-mutex external-mutex
    (hash-fold (lambda (q _ acc) (if (atomic-box-ref (peer-box q)) (cons q acc) acc))
               '() external-peers)))

(define (peer-close p)
  (unless (peer? p) (invalid 'peer-close (format #f "not a peer: ~a" (describe p))))
  (close! p))

;;; ---------------------------------------------------------------------------------------
;;; Blocking calls and the external pump

;; One thread pumps at a time, so a program's queues need no locks even when several of
;; its threads make calls at once. The buffers below are used only under this mutex.
(define pump-mutex (make-mutex))
(define pump-ip (make-bytevector 64 0))
(define pump-port (make-bytevector 2 0))
(define pump-env (make-bytevector ptr-size 0))
(define pump-len (make-bytevector size-t-size 0))
(define pump-ip* (bytevector->pointer pump-ip))
(define pump-port* (bytevector->pointer pump-port))
(define pump-env* (bytevector->pointer pump-env))
(define pump-len* (bytevector->pointer pump-len))
;; Incoming envelopes up to this size are copied here rather than pinned one by one.
(define pump-msg (make-bytevector 8192 0))
(define pump-msg* (bytevector->pointer pump-msg))
;; Messages moved per peer and direction per round, so one busy peer cannot starve others.
(define pump-batch 64)

(define (read-pointer bv) (make-pointer (bytevector-uint-ref bv 0 (native-endianness) ptr-size)))
(define (read-size bv) (bytevector-uint-ref bv 0 (native-endianness) size-t-size))

;; Copy `len` bytes at `ptr` (owned by libpeer) into a fresh bytevector, then free them.
(define (take-bytes! ptr len)
  (let ((bv (if (zero? len) (make-bytevector 0) (bytevector-copy (pointer->bytevector ptr len)))))
    (%bytes-free ptr len)
    bv))

;; The NUL-terminated text libpeer wrote into `bv`.
(define (c-ip-string bv)
  (let loop ((i 0))
    (if (or (= i (bytevector-length bv)) (zero? (bytevector-u8-ref bv i)))
        (let ((text (make-bytevector i)))
          (bytevector-copy! bv 0 text 0 i)
          (utf8->string text))
        (loop (+ i 1)))))

;; Outgoing: everything the peer wants sent goes to the program's `send`.
(define (pump-out! p ptr)
  (let loop ((i 0) (moved 0))
    (if (= i pump-batch)
        moved
        (let ((rc (%ext-pop ptr 0 pump-ip* pump-port* pump-env* pump-len*)))
          (if (zero? rc)
              (let* ((ip (c-ip-string pump-ip))
                     (port (bytevector-u16-native-ref pump-port 0))
                     (payload (take-bytes! (read-pointer pump-env) (read-size pump-len))))
                ((peer-send p) ip port payload)
                (loop (+ i 1) (+ moved 1)))
              moved)))))                ; 1: nothing waiting; <0: closed meanwhile

;; Incoming: everything the program's `recv` has for this peer goes to libpeer. A malformed
;; envelope is dropped, as a bad frame on TCP would be: the network is not trusted.
(define (pump-in! p ptr)
  (let loop ((i 0) (moved 0))
    (if (= i pump-batch)
        moved
        (let ((msg ((peer-recv p))))
          (cond ((not msg) moved)
                ((bytevector? msg)
                 (let ((n (bytevector-length msg)))
                   (%ext-push ptr
                              (if (<= n (bytevector-length pump-msg))
                                  (begin (bytevector-copy! msg 0 pump-msg 0 n) pump-msg*)
                                  (bytevector->pointer msg))
                              n))
                 (loop (+ i 1) (+ moved 1)))
                (else (invalid 'peer (format #f "recv returned ~a, not a bytevector or #f" (describe msg)))))))))

(define (pump-all!)
  (let loop ((peers (live-external-peers)) (moved 0))
    (if (null? peers)
        moved
        (let ((ptr (atomic-box-ref (peer-box (car peers)))))
          (loop (cdr peers)
                (if ptr
                    (+ moved (pump-out! (car peers) ptr) (pump-in! (car peers) ptr))
                    moved))))))

;; Run `thunk` (a C call returning an `outcome`) for peer `p`. With external peers alive it
;; runs on a pooled thread while this one pumps (see (peer worker)); every libpeer call is
;; bounded by its own timeouts, so the pumping ends. `p` is used after the call so that the
;; collector cannot close it meanwhile.
(define (blocking p thunk)
  (let ((result (if (zero? (atomic-box-ref external-count))
                    (thunk)
                    (call-while-polling thunk pump-round!))))
    (keep-alive p)
    result))

;; A call the compiler cannot see through (the variable is assigned, so never inlined):
;; whatever is passed to it stays reachable until the call.
(define keep-alive #f)
(set! keep-alive (lambda (x) x))

;; One pass over every live external peer, unless another thread is pumping right now.
(define (pump-round!)
  (if (try-mutex pump-mutex)
      (dynamic-wind (lambda () #f) pump-all! (lambda () (unlock-mutex pump-mutex)))
      0))

;; A blocking C call on peer `p`: the call (arguments included) is evaluated on whichever
;; thread runs it, so status and message come back from that thread.
(define-syntax-rule (call-blocking who p (proc arg ...))
  (check who (blocking p (lambda () (outcome (proc arg ...))))))

;;; ---------------------------------------------------------------------------------------
;;; Scratch memory for arguments and results
;;
;; `bytevector->pointer` costs microseconds in Guile 3.0.8 (it registers a weak reference),
;; ten times a plain foreign call. So each thread keeps one scratch bytevector whose slot
;; addresses are computed once: 32/64-byte arguments are copied into slots, results copied
;; out of them. A call takes the scratch for its duration (a nested call, say from a `send`
;; run by the pump, gets a fresh one) and gives it back when it returns normally.

(define slot-size 64)                   ; fits a signature
(define slot-count 6)
(define out-offset (* slot-size slot-count)) ; a pointer libpeer writes
(define len-offset (+ out-offset 8))         ; a size_t libpeer writes
(define big-offset 512)                 ; bag results, small values and texts
(define scratch-size 2048)
(define big-size (- scratch-size big-offset))

(define-record-type <scratch>
  (make-scratch* bv slots out len big)
  scratch?
  (bv scratch-bv)
  (slots scratch-slots)                 ; vector of slot-count pointers
  (out scratch-out)
  (len scratch-len)
  (big scratch-big))

(define (make-scratch)
  (let* ((bv (make-bytevector scratch-size 0))
         (base (pointer-address (bytevector->pointer bv)))
         (at (lambda (offset) (make-pointer (+ base offset)))))
    (make-scratch* bv
                   (list->vector (map (lambda (i) (at (* i slot-size))) (iota slot-count)))
                   (at out-offset) (at len-offset) (at big-offset))))

(define scratch-fluid (make-thread-local-fluid #f))

(define (take-scratch!)
  (let ((s (fluid-ref scratch-fluid)))
    (if s
        (begin (fluid-set! scratch-fluid #f) s)
        (make-scratch))))

(define-syntax-rule (with-scratch s body ...)
  (let* ((s (take-scratch!))
         (result (begin body ...)))
    (fluid-set! scratch-fluid s)
    result))

;; Slot i holding a copy of `bv` (at most slot-size bytes), as a pointer.
(define (put! s i bv)
  (bytevector-copy! bv 0 (scratch-bv s) (* i slot-size) (bytevector-length bv))
  (vector-ref (scratch-slots s) i))

;; Slot i, for libpeer to write into.
(define (slot s i) (vector-ref (scratch-slots s) i))

;; A fresh copy of the first `len` bytes of slot i.
(define (get s i len)
  (let ((out (make-bytevector len)))
    (bytevector-copy! (scratch-bv s) (* i slot-size) out 0 len)
    out))

(define (scratch-read-pointer s) (read-pointer-at (scratch-bv s) out-offset))
(define (scratch-read-size s) (bytevector-uint-ref (scratch-bv s) len-offset (native-endianness) size-t-size))
(define (read-pointer-at bv offset)
  (make-pointer (bytevector-uint-ref bv offset (native-endianness) ptr-size)))

;; A pointer to a copy of `bv`: in the big area when it fits, else its own storage.
(define (input-pointer s bv)
  (let ((n (bytevector-length bv)))
    (if (<= n big-size)
        (begin (bytevector-copy! bv 0 (scratch-bv s) big-offset n) (scratch-big s))
        (bytevector->pointer bv))))

;;; ---------------------------------------------------------------------------------------
;;; Making peers

;; `arg`: the replication, or for %new-with a struct peer_options pointer. uid #f: NULL.
(define (new-handle who maker uid ip port arg)
  (check-ip who ip)
  (check-port who port)
  (drain-guardian!)
  (with-scratch s
    (check who (outcome (maker (if uid (put! s 0 uid) %null-pointer) (string->pointer ip "UTF-8")
                               port arg (scratch-out s))))
    (scratch-read-pointer s)))

;; peer_options_init, then the fields from `peer-open`'s options alist (see (peer options)).
(define (new-handle-with who uid ip port options)
  (when uid (check-bytes who "uid" uid key-len))
  (let* ((opts (options-fields options
                             (lambda (what x) (invalid who (format #f "~a, got ~a" what (describe x))))))
         (dir* (if (cadr opts) (string->pointer (cadr opts) "UTF-8") %null-pointer))
         (types (list size_t uint32 '* uint32 uint32)) ; struct peer_options
         (init (make-bytevector (sizeof types) 0))
         (size (begin (%options-init (bytevector->pointer init))
                      (car (parse-c-struct (bytevector->pointer init) types))))
         (o* (make-c-struct types (cons* size (car opts) dir* (cddr opts))))
         (ptr (new-handle who %new-with uid ip port o*)))
    (keep-alive dir*)                   ; the struct's copy of this pointer is not traced
    ptr))

;; The 4th argument: the replication (an integer), or an alist of options (uid may be #f).
(define* (peer-open uid ip port #:optional (options default-replication))
  (register! (make-peer (make-atomic-box
                         (if (exact-integer? options)
                             (begin (check-bytes 'peer-open "uid" uid key-len)
                                    (check-replication 'peer-open options)
                                    (new-handle 'peer-open %new uid ip port options))
                             (new-handle-with 'peer-open uid ip port options)))
                        #f #f #f)))

;; The draft's 4-argument form needs an address: a stable one derived from the uid.
(define (default-port uid)
  (+ 1024 (modulo (+ (* 256 (bytevector-u8-ref uid 0)) (bytevector-u8-ref uid 1)) 64000)))

(define* (peer uid recv send replication #:optional (ip "127.0.0.1") port)
  (unless (procedure? recv) (invalid 'peer "recv must be a procedure"))
  (unless (procedure? send) (invalid 'peer "send must be a procedure"))
  (check-bytes 'peer "uid" uid key-len)
  (check-replication 'peer replication)
  (let ((ptr (new-handle 'peer %new-external uid ip (or port (default-port uid)) replication)))
    (register! (make-peer (make-atomic-box ptr) #t recv send))))

;;; ---------------------------------------------------------------------------------------
;;; Procedures

(define (peer-port p)
  (%port (handle 'peer-port p)))

(define (peer-uid p)
  (let ((ptr (handle 'peer-uid p)))
    (with-scratch s
      (check 'peer-uid (outcome (%uid ptr (slot s 0))))
      (get s 0 key-len))))

;; Stop republishing what `p` stored under `key`: #t, or #f when nothing was.
(define (peer-forget p key)
  (let ((ptr (handle 'peer-forget p)))
    (check-bytes 'peer-forget "key" key key-len)
    (with-scratch s
      (zero? (call-blocking 'peer-forget p (%forget ptr (put! s 0 key)))))))

(define (peer-connect p ip port)
  (let ((ptr (handle 'peer-connect p)))
    (check-ip 'peer-connect ip)
    (check-port 'peer-connect port)
    (let* ((ip* (string->pointer ip "UTF-8"))
           (r (blocking p (lambda () (outcome (%connect ptr ip* port))))))
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
      (invalid 'peer-set (format #f "value must be a bytevector, got ~a" (describe value))))
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

;; Diagnostic for the conformance tests: libpeer's reader, then its canonical writer.
(define (peer-wire-normalize text)
  (unless (string? text)
    (invalid 'peer-wire-normalize (format #f "text must be a string, got ~a" (describe text))))
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
