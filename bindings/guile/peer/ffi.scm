;;; (peer ffi): libpeer's C symbols, its status table and the byte-copying helpers.
;;;
;;; Every symbol is looked up once, at load time, through (system foreign): no C glue.
;;; Bytes libpeer returns are copied into fresh bytevectors before its buffer is freed, so
;;; Scheme never holds C-owned memory.

(define-module (peer ffi)
  #:use-module (system foreign)
  #:use-module (system foreign-library)
  #:use-module (rnrs bytevectors)
  #:export (%new %new-external %new-with %options-init %forget %free %port %address %uid
            %connect %bootstrap %set %ref %bytes-free %bag-publish
            %bag-popular %bag-popular-at %bag-recent %bag-recent-at %bag-sample %bag-sample-at
            %ns-set %ns-ref %ns-ref-at %ns-ref-pinned %ns-ref-at-pinned
            %keypair %random-uid %strerror %last-error-reason
            %ext-push %ext-pop %wire-normalize %stats-list
            max-value-size max-external-value-size
            key-len signature-len ip-buf-len ptr-size size-t-size
            status-table status-code status-symbol
            c-string c-ip-string read-pointer read-size take-bytes!))

;; LIBPEER_DIR names the directory holding libpeer.so (the build tree). Unset or empty: the
;; installed library through the dynamic loader (LD_LIBRARY_PATH, ld.so.cache, /usr/lib...)
;; by its soname, so this code never gets another major version; libpeer.so (the
;; development link) only when there is no libpeer.so.0. #:extensions '(): the name goes to
;; dlopen as it is, without Guile appending ".so".
(define libpeer
  (let ((dir (getenv "LIBPEER_DIR")))
    (if (and dir (not (string-null? dir)))
        (load-foreign-library (string-append dir "/libpeer.so"))
        (let try ((names '("libpeer.so.0" "libpeer.so")) (first-failure #f))
          (if (null? names)
              (error (string-append "peer: cannot load libpeer.so.0 (install libpeer, point \
LD_LIBRARY_PATH at its directory, or set LIBPEER_DIR to the build's target/release): "
                                    (string-trim-right first-failure)))
              (catch #t
                (lambda () (load-foreign-library (car names) #:extensions '()))
                (lambda (key . args)
                  (try (cdr names)
                       (or first-failure
                           (call-with-output-string
                             (lambda (port) (print-exception port #f key args))))))))))))

(define (c-proc ret name args)
  (pointer->procedure ret (foreign-library-pointer libpeer name) args))

(define %new          (c-proc int "peer_new" (list '* '* uint16 uint32 '*)))
(define %new-external (c-proc int "peer_new_external" (list '* '* uint16 uint32 '*)))
(define %new-with     (c-proc int "peer_new_with" (list '* '* uint16 '* '*)))
(define %options-init (c-proc int "peer_options_init_sized" (list '* size_t)))
(define %forget       (c-proc int "peer_forget" (list '* '*)))
(define %free         (c-proc void "peer_free" (list '*)))
(define %port         (c-proc uint16 "peer_port" (list '*)))
(define %address      (c-proc int "peer_address" (list '* '* '*)))
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
(define %last-error-reason (c-proc '* "peer_last_error_reason" '()))
(define %status-symbol (c-proc '* "peer_status_symbol" (list int)))
(define %status-count (c-proc size_t "peer_status_count" '()))
(define %status-codes (c-proc int "peer_status_codes" (list '* size_t '*)))
(define %max-value-size (c-proc size_t "peer_max_value_size" '()))
(define %max-external-value-size (c-proc size_t "peer_max_external_value_size" '()))
(define %ext-push     (c-proc int "peer_ext_push" (list '* '* size_t)))
(define %ext-pop      (c-proc int "peer_ext_pop" (list '* uint32 '* '* '* '*)))
(define %wire-normalize (c-proc int "peer_wire_normalize" (list '* size_t '* '*)))
(define %stats-list   (c-proc int "peer_stats_list" (list '* '* size_t '*)))

;; Largest value `peer-set` accepts (262138): a `set` message must fit in 1 MiB.
(define max-value-size (%max-value-size))
;; The same on the program's transport (209689): a whole envelope fits in 1 MiB as text.
(define max-external-value-size (%max-external-value-size))

(define key-len 32)
(define signature-len 64)
(define ip-buf-len 64)                  ; PEER_IP_BUF_LEN
(define ptr-size (sizeof '*))
(define size-t-size (sizeof size_t))

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

;; The symbol of status number `code` (#f for a number libpeer does not define).
(define (status-symbol code)
  (let loop ((l status-table))
    (cond ((null? l) #f)
          ((eqv? (cdar l) code) (caar l))
          (else (loop (cdr l))))))

(define (read-pointer bv) (make-pointer (bytevector-uint-ref bv 0 (native-endianness) ptr-size)))
(define (read-size bv) (bytevector-uint-ref bv 0 (native-endianness) size-t-size))

;; Copy `len` bytes at `ptr` (owned by libpeer) into a fresh bytevector, then free them.
(define (take-bytes! ptr len)
  (let ((bv (if (zero? len) (make-bytevector 0) (bytevector-copy (pointer->bytevector ptr len)))))
    (%bytes-free ptr len)
    bv))

;; The NUL-terminated text libpeer wrote into `bv` from byte `start`.
(define* (c-ip-string bv #:optional (start 0))
  (let loop ((i start))
    (if (or (= i (bytevector-length bv)) (zero? (bytevector-u8-ref bv i)))
        (let ((text (make-bytevector (- i start))))
          (bytevector-copy! bv start text 0 (- i start))
          (utf8->string text))
        (loop (+ i 1)))))
