;; (peer): Chez Scheme binding of libpeer's C ABI (include/peer.h): the procedures shared
;; with Guile and Chibi (see the project's README). Its parts:
;;   (peer ffi)        libpeer's C functions, its status table, buffer helpers
;;   (peer error)      the condition every error of the library is (&peer-error + who ...)
;;   (peer handle)     peer records, freeing handles once (peer-close or a guardian)
;;   (peer transport)  external peers' envelopes, the library thread, blocking calls
(library (peer)
  (export peer peer? peer-open peer-close peer-port peer-ip peer-uid peer-forget peer-poll
          peer-stats
          peer-connect peer-bootstrap peer-set peer-ref
          peer-bag-publish peer-bag-popular peer-bag-recent peer-bag-sample
          peer-bag-popular-at peer-bag-recent-at peer-bag-sample-at
          peer-namespace-set peer-namespace-ref peer-namespace-ref-at
          peer-keypair peer-random-uid peer-max-value-size peer-max-external-value-size
          peer-wire-normalize
          peer-error? peer-error-who peer-error-status peer-error-symbol peer-error-message)
  (import (chezscheme) (peer ffi) (peer error) (peer handle) (peer transport))

  (define peer-max-value-size max-value-size)
  (define peer-max-external-value-size max-external-value-size)

  (define status-unreachable (status-code 'unreachable))

  ;; ---- argument checks: `invalid`, "invalid argument: <what>" -------------------------

  (define (check-id who what x)
    (unless (and (bytevector? x) (fx= (bytevector-length x) 32))
      (raise-invalid who (format "~a must be a 32-byte bytevector" what) x)))

  (define (check-range who what x lo hi)
    (unless (and (integer? x) (exact? x) (<= lo x hi))
      (raise-invalid who (format "~a must be an exact integer in ~a..~a" what lo hi) x)))

  ;; libpeer checks the range 5..20 itself; here only what fits its uint32_t.
  (define (check-replication who what x)
    (unless (and (integer? x) (exact? x) (<= 0 x #xFFFFFFFF))
      (raise-invalid who (format "~a must be an exact integer in 5..20" what) x)))

  (define (check-text who what s)
    (unless (and (string? s) (not (exists (lambda (c) (char=? c #\nul)) (string->list s))))
      (raise-invalid who (format "~a must be a string without NUL characters" what) s)))

  ;; ---- calling libpeer ----------------------------------------------------------------

  ;; (call p (bv ...) c-expr [after]): c-expr with the bytevectors locked, through
  ;; run-blocking; libpeer's message is read on the same thread right after it, and `after`
  ;; (copying out what libpeer allocated) runs there too on success, so a call whose result
  ;; is dropped leaks nothing. -> (status message after-value).
  (define-syntax call
    (syntax-rules ()
      [(_ p (bv ...) c-expr) (call p (bv ...) c-expr (lambda () #f))]
      [(_ p (bv ...) c-expr after)
       (run-blocking p
         (lambda ()
           (with-locked (bv ...)
             (let* ([rc c-expr]
                    [msg (if (< rc 0) (failure-message rc) "")])
               (list rc msg (if (eqv? rc 0) (after) #f))))))]))

  ;; A call made here, not blocking -> (status message #f).
  (define-syntax call-here
    (syntax-rules ()
      [(_ c-expr) (let* ([rc c-expr] [msg (if (< rc 0) (failure-message rc) "")])
                    (list rc msg #f))]))

  ;; -> status (0 or 1); raises on a negative one.
  (define (status who res)
    (let ([rc (car res)])
      (when (< rc 0) (raise-failure who rc (cadr res)))
      rc))

  ;; ---- constructors and handle procedures ---------------------------------------------

  ;; c-new: (uid-or-#f ipz-or-#f port arg out), `arg` the replication or a struct
  ;; peer_options address. Creation needs no pumping, so it runs on this thread.
  (define (make who c-new uid ip port arg mode recv send on-error)
    (drain!)
    (let ([uid (and uid (bytevector-copy uid))]
          [ipz (and ip (c-string ip))]
          [out (make-bytevector 8 0)])
      (status who (with-locked (uid ipz out) (call-here (c-new uid ipz port arg out))))
      (let ([rec (make-peer-record (make-handle (out-word out)) recv send mode on-error '())])
        (register! rec)
        (when (eq? mode 'thread) (start-serving!))
        rec)))

  (define (check-address who ip port)
    (check-text who "ip" ip)
    (check-range who "port" port 0 65535))

  (define-ftype peer-options
    (struct [size size_t] [replication unsigned-32] [data-dir uptr]
            [republish unsigned-32] [expire unsigned-32] [address-limits unsigned-32]))

  (define (alist-of? keys x)
    (and (list? x) (for-all (lambda (e) (and (pair? e) (memq (car e) keys))) x)))

  (define (option options key default)
    (cond [(assq key options) => cdr] [else default]))

  (define open-keys '(replication data-dir republish expire address-limits))

  ;; address-limits' symbols and their C codes (struct peer_options' address_limits).
  (define address-limits-codes '((default . 0) (strict . 1) (off . 2)))

  ;; peer_new_with, its struct peer_options (and data_dir string) in foreign memory freed
  ;; after the call: peer_options_init_sized, then the fields of the alist `options`.
  (define (open-with who uid ip port options)
    (when uid (check-id who "uid" uid))
    (check-address who ip port)
    (unless (alist-of? open-keys options)
      (raise-invalid who
        (format "options must be an integer (the replication) or an alist of ~a" open-keys)
        options))
    (let ([value (lambda (key) (option options key 0))])
      (check-replication who "option replication" (value 'replication))
      (for-each (lambda (key) (check-range who (format "option ~a" key) (value key) 0 #xFFFFFFFF))
        '(republish expire))
      (let* ([dir (option options 'data-dir #f)]
             [limits (option options 'address-limits 'default)]
             [limits-code (cond [(assq limits address-limits-codes) => cdr] [else #f])])
        (when dir (check-text who "option data-dir" dir))
        (unless limits-code
          (raise-invalid who "option address-limits must be default, strict or off" limits))
        (let* ([dirz (and dir (string->utf8 dir))]
               [o (make-ftype-pointer peer-options (foreign-alloc (ftype-sizeof peer-options)))]
               [d (if dirz (foreign-alloc (fx+ (bytevector-length dirz) 1)) 0)])
          (dynamic-wind
            (lambda () (void))
            (lambda ()
              (when dirz
                (do ([i 0 (fx+ i 1)]) ((fx= i (bytevector-length dirz)))
                  (foreign-set! 'unsigned-8 d i (bytevector-u8-ref dirz i)))
                (foreign-set! 'unsigned-8 d (bytevector-length dirz) 0))
              ;; With this ftype's size: libpeer writes nothing past it.
              (%options-init (ftype-pointer-address o) (ftype-sizeof peer-options))
              (ftype-set! peer-options (replication) o (value 'replication))
              (ftype-set! peer-options (data-dir) o d)
              (ftype-set! peer-options (republish) o (value 'republish))
              (ftype-set! peer-options (expire) o (value 'expire))
              (ftype-set! peer-options (address-limits) o limits-code)
              (make who %new-with uid ip port (ftype-pointer-address o) #f #f #f #f))
            (lambda ()
              (foreign-free (ftype-pointer-address o))
              (unless (eqv? d 0) (foreign-free d))))))))

  ;; The 4th argument: the replication (a number), or an alist of options (uid may be #f).
  (define peer-open
    (case-lambda
      [(uid ip port) (peer-open uid ip port 5)]
      [(uid ip port options)
       (if (number? options)
           (begin
             (check-id 'peer-open "uid" uid)
             (check-address 'peer-open ip port)
             (check-replication 'peer-open "replication" options)
             (make 'peer-open %new uid ip port options #f #f #f #f))
           (open-with 'peer-open uid ip port options))]))

  (define peer-keys '(ip port serve on-error))

  ;; The draft's form: the program moves the envelopes. options: ip and port (both, or
  ;; neither: libpeer derives them from the uid), serve (thread or poll), on-error.
  (define peer
    (case-lambda
      [(uid recv send replication) (peer uid recv send replication '())]
      [(uid recv send replication options)
       (check-id 'peer "uid" uid)
       (unless (procedure? recv) (raise-invalid 'peer "recv must be a procedure" recv))
       (unless (procedure? send) (raise-invalid 'peer "send must be a procedure" send))
       (check-replication 'peer "replication" replication)
       (unless (alist-of? peer-keys options)
         (raise-invalid 'peer (format "options must be an alist of ~a" peer-keys) options))
       (let ([ip (option options 'ip #f)]
             [port (option options 'port #f)]
             [serve (option options 'serve 'thread)]
             [on-error (option options 'on-error #f)])
         (unless (eq? (not ip) (not port))
           (raise-invalid 'peer "options ip and port go together" options))
         (when ip (check-address 'peer ip port))
         (unless (memq serve '(thread poll))
           (raise-invalid 'peer "option serve must be thread or poll" serve))
         (unless (or (not on-error) (procedure? on-error))
           (raise-invalid 'peer "option on-error must be a procedure" on-error))
         (make 'peer %new-external uid ip (or port 0) replication serve recv send on-error))]))

  (define (peer-close p)
    (unless (peer? p) (raise-invalid 'peer-close "not a peer" p))
    (free-handle! (peer-record-cell p))
    (drain!))

  ;; -> (ip . port): the bound address of a TCP peer, the address of an external one.
  (define (address who p)
    (drain!)
    (let ([ptr (ptr-of who p)] [ip (make-bytevector ip-buf-len 0)] [port (make-bytevector 2 0)])
      (status who (call-here (%address ptr ip port)))
      (let ([n (let loop ([i 0]) (if (fx= (bytevector-u8-ref ip i) 0) i (loop (fx+ i 1))))])
        (cons (utf8->string (bytevector-truncate! ip n)) (bytevector-u16-native-ref port 0)))))

  (define (peer-port p) (cdr (address 'peer-port p)))
  (define (peer-ip p) (car (address 'peer-ip p)))

  (define (peer-uid p)
    (drain!)
    (let ([ptr (ptr-of 'peer-uid p)] [out (make-bytevector 32 0)])
      (status 'peer-uid (call-here (%uid ptr out)))
      out))

  ;; struct peer_stat: a static NUL-terminated name and its value.
  (define-ftype peer-stat (struct [name uptr] [value unsigned-64]))

  ;; A static C string of libpeer (ASCII names) -> a Scheme string.
  (define (static-string addr)
    (let loop ([n 0])
      (if (fx= (foreign-ref 'unsigned-8 addr n) 0)
          (utf8->string (copy-out addr n))
          (loop (fx+ n 1)))))

  ;; peer_stats_list into a foreign array of `cap` entries -> (values n alist), the alist
  ;; the first min(cap, n) entries in libpeer's order.
  (define (stats-into ptr cap)
    (let ([arr (make-ftype-pointer peer-stat
                 (foreign-alloc (fx* (fxmax cap 1) (ftype-sizeof peer-stat))))]
          [count (make-bytevector 8 0)])
      (dynamic-wind
        (lambda () (void))
        (lambda ()
          (status 'peer-stats (call-here (%stats-list ptr (ftype-pointer-address arr) cap count)))
          (let ([n (out-word count)])
            (values n
              (let loop ([i (fx- (fxmin cap n) 1)] [acc '()])
                (if (fx< i 0)
                    acc
                    (loop (fx- i 1)
                          (cons (cons (string->symbol
                                        (static-string (ftype-ref peer-stat (name) arr i)))
                                      (ftype-ref peer-stat (value) arr i))
                                acc)))))))
        (lambda () (foreign-free (ftype-pointer-address arr))))))

  ;; Every figure of p by name: ((contacts . 12) (values . 3) ...), peer_stats_list's order.
  ;; A quick local call (no network), made here. The count comes first (cap 0); the routing
  ;; table may grow between the calls, so a larger count then gets one more try.
  (define (peer-stats p)
    (drain!)
    (let ([ptr (ptr-of 'peer-stats p)] [count (make-bytevector 8 0)])
      (status 'peer-stats (call-here (%stats-list ptr 0 0 count)))
      (let ([cap (out-word count)])
        (let-values ([(n stats) (stats-into ptr cap)])
          (if (> n cap)
              (let-values ([(n stats) (stats-into ptr n)]) stats)
              stats)))))

  ;; Moves what waits for external peer p now, both ways -> how many envelopes moved.
  (define (peer-poll p)
    (drain!)
    (ptr-of 'peer-poll p)
    (unless (peer-record-mode p)
      (raise-invalid 'peer-poll "not a peer of the program's transport" p))
    (pump-one! p))

  ;; Stop republishing what p stored under key: #t, or #f when nothing was. Local to the
  ;; peer (no message waits on the transport), so it runs here and pumps nothing.
  (define (peer-forget p key)
    (drain!)
    (let ([ptr (ptr-of 'peer-forget p)])
      (check-id 'peer-forget "key" key)
      (eqv? (status 'peer-forget (with-locked (key) (call-here (%forget ptr key)))) 0)))

  ;; ---- network procedures --------------------------------------------------------------

  (define (peer-connect p ip port)
    (drain!)
    (let ([ptr (ptr-of 'peer-connect p)])
      (check-text 'peer-connect "host" ip)
      (check-range 'peer-connect "port" port 0 65535)
      (let* ([ipz (c-string ip)]
             [res (call p (ipz) (%connect ptr ipz port))])
        (if (eqv? (car res) status-unreachable) #f (begin (status 'peer-connect res) #t)))))

  (define (peer-bootstrap p)
    (drain!)
    (let ([ptr (ptr-of 'peer-bootstrap p)])
      (status 'peer-bootstrap (call p () (%bootstrap ptr)))
      (void)))

  (define (peer-set p value)
    (drain!)
    (let ([ptr (ptr-of 'peer-set p)])
      (unless (bytevector? value) (raise-invalid 'peer-set "value must be a bytevector" value))
      (let ([key (make-bytevector 32 0)])
        (status 'peer-set (call p (value key) (%set ptr value (bytevector-length value) key)))
        key)))

  (define (peer-ref p key)
    (drain!)
    (let ([ptr (ptr-of 'peer-ref p)])
      (check-id 'peer-ref "key" key)
      (let* ([addr (make-bytevector 8 0)]
             [len (make-bytevector 8 0)]
             [res (call p (key addr len) (%ref ptr key addr len)
                    (lambda ()            ; copy libpeer's buffer out and free it
                      (let* ([a (out-word addr)] [n (out-word len)] [bv (copy-out a n)])
                        (%bytes-free a n)
                        bv)))])
        (and (eqv? (status 'peer-ref res) 0) (caddr res)))))

  (define (peer-bag-publish p key value)
    (drain!)
    (let ([ptr (ptr-of 'peer-bag-publish p)])
      (check-id 'peer-bag-publish "key" key)
      (check-id 'peer-bag-publish "value" value)
      (status 'peer-bag-publish (call p (key value) (%bag-publish ptr key value)))
      (void)))

  (define default-cap 20)

  ;; values_out (cap*32 bytes) and n_out -> vector of n fresh 32-byte bytevectors.
  (define (bag-vector buf n)
    (let ([v (make-vector n)])
      (do ([i 0 (fx+ i 1)]) ((fx= i n) v)
        (let ([b (make-bytevector 32)])
          (bytevector-copy! buf (fx* i 32) b 0 32)
          (vector-set! v i b)))))

  (define (bag who c-proc p key cap)
    (drain!)
    (let ([ptr (ptr-of who p)])
      (check-id who "key" key)
      (check-range who "cap" cap 0 100000)
      (let ([buf (make-bytevector (fx* 32 (fxmax cap 1)) 0)] [n (make-bytevector 8 0)])
        (status who (call p (key buf n) (c-proc ptr key buf cap n)))
        (bag-vector buf (fxmin cap (out-word n))))))

  (define (bag-at who c-proc p uid key cap)
    (drain!)
    (let ([ptr (ptr-of who p)])
      (check-id who "uid" uid)
      (check-id who "key" key)
      (check-range who "cap" cap 0 100000)
      (let ([buf (make-bytevector (fx* 32 (fxmax cap 1)) 0)] [n (make-bytevector 8 0)])
        (status who (call p (uid key buf n) (c-proc ptr uid key buf cap n)))
        (bag-vector buf (fxmin cap (out-word n))))))

  (define-syntax define-bag-procedures
    (syntax-rules ()
      [(_ name at-name c-proc c-at-proc)
       (begin
         (define name
           (case-lambda
             [(p key) (bag 'name c-proc p key default-cap)]
             [(p key cap) (bag 'name c-proc p key cap)]))
         (define at-name
           (case-lambda
             [(p uid key) (bag-at 'at-name c-at-proc p uid key default-cap)]
             [(p uid key cap) (bag-at 'at-name c-at-proc p uid key cap)])))]))

  (define-bag-procedures peer-bag-popular peer-bag-popular-at %bag-popular %bag-popular-at)
  (define-bag-procedures peer-bag-recent peer-bag-recent-at %bag-recent %bag-recent-at)
  (define-bag-procedures peer-bag-sample peer-bag-sample-at %bag-sample %bag-sample-at)

  ;; ---- namespaces ----------------------------------------------------------------------

  (define (peer-namespace-set p secret public key value)
    (drain!)
    (let ([ptr (ptr-of 'peer-namespace-set p)])
      (check-id 'peer-namespace-set "secret" secret)
      (check-id 'peer-namespace-set "public key" public)
      (check-id 'peer-namespace-set "key" key)
      (check-id 'peer-namespace-set "value" value)
      (let ([sig (make-bytevector 64 0)])
        (status 'peer-namespace-set
          (call p (secret public key value sig) (%ns-set ptr secret public key value sig)))
        sig)))

  (define (check-signature who signature)
    (unless (and (bytevector? signature) (fx= (bytevector-length signature) 64))
      (raise-invalid who "signature must be a 64-byte bytevector" signature)))

  (define peer-namespace-ref
    (case-lambda
      [(p public key) (namespace-ref 'peer-namespace-ref p #f public key #f)]
      [(p public key signature) (namespace-ref 'peer-namespace-ref p #f public key signature)]))

  (define peer-namespace-ref-at
    (case-lambda
      [(p uid public key) (namespace-ref 'peer-namespace-ref-at p uid public key #f)]
      [(p uid public key signature)
       (namespace-ref 'peer-namespace-ref-at p uid public key signature)]))

  ;; uid #f: the whole network; signature #f: the highest valid seq wins.
  (define (namespace-ref who p uid public key signature)
    (drain!)
    (let ([ptr (ptr-of who p)])
      (when uid (check-id who "uid" uid))
      (check-id who "public key" public)
      (check-id who "key" key)
      (when signature (check-signature who signature))
      (let* ([value (make-bytevector 32 0)]
             [sig-out (make-bytevector 64 0)]
             [res (cond
                    [(and uid signature)
                     (call p (uid public key signature value)
                       (%ns-ref-at-pinned ptr uid public key signature value))]
                    [uid (call p (uid public key value sig-out)
                           (%ns-ref-at ptr uid public key value sig-out))]
                    [signature (call p (public key signature value)
                                 (%ns-ref-pinned ptr public key signature value))]
                    [else (call p (public key value sig-out)
                            (%ns-ref ptr public key value sig-out))])])
        (and (eqv? (status who res) 0) value))))

  ;; ---- local procedures ----------------------------------------------------------------

  (define (peer-keypair)
    (let ([secret (make-bytevector 32 0)] [public (make-bytevector 32 0)])
      (%keypair secret public)
      (values secret public)))

  (define (peer-random-uid)
    (let ([uid (make-bytevector 32 0)])
      (%random-uid uid)
      uid))

  ;; Diagnostic for the conformance tests: libpeer's canonical text of one message. It
  ;; writes R7RS `#u8(...)`, which Chez 9.5's `read` rejects: rewrite it to `#vu8(` before
  ;; reading (as (peer transport) does, and scheme-tests/chez-prelude.ss's read-wire).
  (define (peer-wire-normalize text)
    (unless (string? text) (raise-invalid 'peer-wire-normalize "text must be a string" text))
    (let* ([in (string->utf8 text)]
           [addr (make-bytevector 8 0)]
           [len (make-bytevector 8 0)]
           [res (call-here (%wire-normalize in (bytevector-length in) addr len))])
      (status 'peer-wire-normalize res)
      (let* ([a (out-word addr)] [n (out-word len)] [bv (copy-out a n)])
        (%bytes-free a (+ n 1))
        (utf8->string bv)))))
