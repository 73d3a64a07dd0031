;; (peer ffi): libpeer's C functions (include/peer.h) and the memory helpers for calling them.
;;
;; - libpeer is loaded once, before any foreign-procedure names its symbols: from
;;   $LIBPEER_DIR/libpeer.so when LIBPEER_DIR is set (the build tree, for tests), else the
;;   installed one through the dynamic loader's search, by soname (see load-libpeer).
;; - Every call that can block is declared __collect_safe so other threads keep running and
;;   collecting meanwhile; its buffers are locked bytevectors (with-locked) or foreign memory,
;;   because the collector may move an unlocked bytevector during such a call.
;; - The status table (symbol <-> number) is read from libpeer at load time, never copied.
(library (peer ffi)
  (export %memcpy %new %new-external %new-with %options-init %forget %free %port %address
          %uid %connect %bootstrap %set %ref %bytes-free %bag-publish
          %bag-popular %bag-popular-at %bag-recent %bag-recent-at %bag-sample %bag-sample-at
          %ns-set %ns-ref %ns-ref-at %ns-ref-pinned %ns-ref-at-pinned
          %keypair %random-uid %strerror %last-error-reason %ext-push %ext-pop %wire-normalize
          %stats-list
          max-value-size max-external-value-size ip-buf-len
          status-code status-symbol failure-message
          with-locked copy-out out-word c-string)
  (import (chezscheme))

  ;; A bare name makes load-shared-object (dlopen) search the loader's path (LD_LIBRARY_PATH,
  ;; the ld.so cache, /usr/lib ...). The soname first: it is what `make install` and packages
  ;; always provide, while the unversioned libpeer.so link may only come with a -dev package.
  (define (load-libpeer)
    (let ([dir (getenv "LIBPEER_DIR")])
      (if (and dir (not (string=? dir "")))
          (load-shared-object (string-append dir "/libpeer.so"))
          (let try ([names '("libpeer.so.0" "libpeer.so")] [why '()])
            (if (null? names)
                (error 'peer
                  (string-append "cannot load libpeer (is it installed? else set LIBPEER_DIR"
                    " to the directory holding libpeer.so, or LD_LIBRARY_PATH to its prefix's lib)"
                    (apply string-append (reverse why))))
                (guard (e (#t (try (cdr names) (cons (string-append "; " (reason e)) why))))
                  (load-shared-object (car names))))))))

  ;; dlopen's complaint, from the condition load-shared-object raises.
  (define (reason e)
    (if (and (message-condition? e) (irritants-condition? e))
        (guard (x (#t (condition-message e)))
          (apply format (condition-message e) (condition-irritants e)))
        (format "~s" e)))

  (define libpeer-loaded
    (begin
      (load-shared-object "libc.so.6")          ; memcpy, to copy C buffers out fast
      (load-libpeer)
      #t))

  (define %memcpy (foreign-procedure "memcpy" (u8* uptr size_t) uptr))
  ;; A u8* argument may be #f: NULL (for peer_new_external's ip: derived from the uid).
  (define %new (foreign-procedure __collect_safe "peer_new"
                 (u8* u8* unsigned-16 unsigned-32 u8*) int))
  (define %new-external (foreign-procedure __collect_safe "peer_new_external"
                          (u8* u8* unsigned-16 unsigned-32 u8*) int))
  (define %new-with (foreign-procedure __collect_safe "peer_new_with"
                      (u8* u8* unsigned-16 uptr u8*) int))
  (define %options-init (foreign-procedure "peer_options_init_sized" (uptr size_t) int))
  (define %forget (foreign-procedure __collect_safe "peer_forget" (uptr u8*) int))
  (define %free (foreign-procedure __collect_safe "peer_free" (uptr) void))
  (define %port (foreign-procedure "peer_port" (uptr) unsigned-16))
  (define %address (foreign-procedure "peer_address" (uptr u8* u8*) int))
  (define %uid (foreign-procedure "peer_uid" (uptr u8*) int))
  (define %connect (foreign-procedure __collect_safe "peer_connect" (uptr u8* unsigned-16) int))
  (define %bootstrap (foreign-procedure __collect_safe "peer_bootstrap" (uptr) int))
  (define %set (foreign-procedure __collect_safe "peer_set" (uptr u8* size_t u8*) int))
  (define %ref (foreign-procedure __collect_safe "peer_ref" (uptr u8* u8* u8*) int))
  (define %bytes-free (foreign-procedure "peer_bytes_free" (uptr size_t) void))
  (define %bag-publish (foreign-procedure __collect_safe "peer_bag_publish" (uptr u8* u8*) int))
  (define-syntax define-bag
    (syntax-rules ()
      [(_ name at-name c-name c-at-name)
       (begin
         (define name (foreign-procedure __collect_safe c-name
                        (uptr u8* u8* size_t u8*) int))
         (define at-name (foreign-procedure __collect_safe c-at-name
                           (uptr u8* u8* u8* size_t u8*) int)))]))
  (define-bag %bag-popular %bag-popular-at "peer_bag_popular" "peer_bag_popular_at")
  (define-bag %bag-recent %bag-recent-at "peer_bag_recent" "peer_bag_recent_at")
  (define-bag %bag-sample %bag-sample-at "peer_bag_sample" "peer_bag_sample_at")
  (define %ns-set (foreign-procedure __collect_safe "peer_namespace_set"
                    (uptr u8* u8* u8* u8* u8*) int))
  (define %ns-ref (foreign-procedure __collect_safe "peer_namespace_ref"
                    (uptr u8* u8* u8* u8*) int))
  (define %ns-ref-at (foreign-procedure __collect_safe "peer_namespace_ref_at"
                       (uptr u8* u8* u8* u8* u8*) int))
  (define %ns-ref-pinned (foreign-procedure __collect_safe "peer_namespace_ref_pinned"
                           (uptr u8* u8* u8* u8*) int))
  (define %ns-ref-at-pinned (foreign-procedure __collect_safe "peer_namespace_ref_at_pinned"
                              (uptr u8* u8* u8* u8* u8*) int))
  (define %keypair (foreign-procedure "peer_keypair" (u8* u8*) void))
  (define %random-uid (foreign-procedure "peer_random_uid" (u8*) void))
  (define %strerror (foreign-procedure "peer_strerror" (int) utf-8))
  (define %last-error-reason (foreign-procedure "peer_last_error_reason" () utf-8))
  (define %status-symbol (foreign-procedure "peer_status_symbol" (int) utf-8))
  (define %status-count (foreign-procedure "peer_status_count" () size_t))
  (define %status-codes (foreign-procedure "peer_status_codes" (u8* size_t u8*) int))
  (define %max-value-size (foreign-procedure "peer_max_value_size" () size_t))
  (define %max-external-value-size
    (foreign-procedure "peer_max_external_value_size" () size_t))
  (define %ext-push (foreign-procedure __collect_safe "peer_ext_push" (uptr u8* size_t) int))
  (define %ext-pop (foreign-procedure __collect_safe "peer_ext_pop"
                     (uptr unsigned-32 uptr uptr uptr uptr) int))
  (define %wire-normalize (foreign-procedure "peer_wire_normalize" (u8* size_t u8* u8*) int))
  ;; Local and quick, so not __collect_safe; its array of struct peer_stat is foreign memory
  ;; (an ftype in (peer)), 0 for NULL when asking the count.
  (define %stats-list (foreign-procedure "peer_stats_list" (uptr uptr size_t u8*) int))

  (define max-value-size (%max-value-size))
  (define max-external-value-size (%max-external-value-size))
  (define ip-buf-len 64)                        ; PEER_IP_BUF_LEN

  ;; libpeer's statuses as ((symbol . number) ...), read from the library once at load time.
  (define status-table
    (let* ([n (%status-count)]
           [int-size (foreign-sizeof 'int)]
           [size-size (foreign-sizeof 'size_t)]
           [codes (make-bytevector (* (max n 1) int-size) 0)]
           [count (make-bytevector size-size 0)])
      (unless (eqv? (%status-codes codes n count) 0)
        (error 'peer "cannot read libpeer's status codes"))
      (map (lambda (i)
             (let ([code (bytevector-sint-ref codes (* i int-size) (native-endianness) int-size)])
               (cons (string->symbol (%status-symbol code)) code)))
           (iota (bytevector-uint-ref count 0 (native-endianness) size-size)))))

  ;; The number of the status named `symbol`.
  (define (status-code symbol)
    (cond [(assq symbol status-table) => cdr]
          [else (error 'peer "libpeer has no status" symbol)]))

  ;; The symbol of status number `code` (#f for a number libpeer does not define).
  (define (status-symbol code)
    (cond [(find (lambda (e) (eqv? (cdr e) code)) status-table) => car]
          [else #f]))

  ;; The message of this thread's last failure, status `rc`: libpeer's reason (without the C
  ;; function's name), else its name of the status. Read right after the failed call.
  (define (failure-message rc)
    (let ([reason (%last-error-reason)])
      (if (string=? reason "") (%strerror rc) reason)))

  ;; Lock bytevector arguments (#f = NULL is left alone) for the duration of a
  ;; __collect_safe call, so the collector cannot move them while C writes into them.
  (define-syntax with-locked
    (syntax-rules ()
      [(_ (x ...) body ...)
       (dynamic-wind
         (lambda () (when x (lock-object x)) ... (void))
         (lambda () body ...)
         (lambda () (when x (unlock-object x)) ... (void)))]))

  ;; Copy n bytes of C memory into a fresh bytevector (memcpy is not collect-safe, so the
  ;; destination cannot move during it).
  (define (copy-out ptr n)
    (let ([bv (make-bytevector n)])
      (unless (fx= n 0) (%memcpy bv ptr n))
      bv))

  (define (out-word bv) (bytevector-u64-native-ref bv 0))

  (define (c-string s)                  ; a string as a NUL-terminated bytevector
    (let* ([b (string->utf8 s)]
           [n (bytevector-length b)]
           [r (make-bytevector (fx+ n 1) 0)])
      (bytevector-copy! b 0 r 0 n)
      r)))
