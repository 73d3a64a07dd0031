;;; (peer handles): the peer record, closing, the guardian, and the registry of the peers
;;; on the program's transport.
;;;
;;; A peer's C handle lives in an atomic box; `peer-close` (`close!`) and the guardian
;;; (`collect!`) both swap the box to #f before freeing, so the handle is freed exactly once
;;; whoever gets there first. The registry holds external peers weakly, so one the program
;;; dropped is still collected (and closed by the guardian) although the library thread
;;; serves it.

(define-module (peer handles)
  #:use-module (srfi srfi-9)
  #:use-module (srfi srfi-9 gnu)
  #:use-module (ice-9 atomic)
  #:use-module (ice-9 threads)
  #:use-module (peer ffi)
  #:use-module (peer errors)
  #:export (make-peer peer? peer-box peer-mode peer-recv peer-send peer-on-error
            peer-calls set-peer-calls! handle external-handle close! register!
            live-peers poll-count registry-mutex drain-guardian! pump-mutex))

(define-record-type <peer>
  (make-peer* box mode recv send on-error calls)
  peer?
  (box peer-box)                        ; atomic box: the C handle, or #f once closed
  (mode peer-mode)                      ; tcp, thread or poll
  (recv peer-recv)
  (send peer-send)
  (on-error peer-on-error)
  (calls peer-calls set-peer-calls!))   ; thread mode: calls waiting on it (registry-mutex)

(define (make-peer ptr mode recv send on-error)
  (make-peer* (make-atomic-box ptr) mode recv send on-error '()))

(set-record-type-printer!
 <peer>
 (lambda (p port)
   (let ((ptr (atomic-box-ref (peer-box p))))
     (format port "#<peer ~a ~a>"
             (if (eq? (peer-mode p) 'tcp) "tcp" "external")
             (if ptr (%port ptr) "closed")))))

;; The C handle of an open peer; raises when it has been closed.
(define (handle who p)
  (unless (peer? p) (invalid who "expected a peer" p))
  (or (atomic-box-ref (peer-box p))
      (raise-peer-error who status-closed (c-string (%strerror status-closed)) '())))

;; The C handle of an open peer made by `peer`.
(define (external-handle who p)
  (let ((ptr (handle who p)))
    (when (eq? (peer-mode p) 'tcp)
      (invalid who "expected a peer made by `peer` (the program's transport), not `peer-open`" p))
    ptr))

;; Unreachable peers are closed after a collection (and whenever a peer is made).
(define guardian (make-guardian))

;; External peers by mode, weakly; a count per mode says cheaply whether any is open.
(define registry-mutex (make-mutex))
(define tables `((thread . ,(make-weak-key-hash-table)) (poll . ,(make-weak-key-hash-table))))
(define counts `((thread . ,(make-atomic-box 0)) (poll . ,(make-atomic-box 0))))

(define (atomic-add! box n)
  (let loop ((old (atomic-box-ref box)))
    (let ((seen (atomic-box-compare-and-swap! box old (+ old n))))
      (unless (eqv? seen old) (loop seen)))))

;; How many `poll`-mode peers are open: blocking calls pump only when some are.
(define (poll-count) (atomic-box-ref (assq-ref counts 'poll)))

;; Every call of the program's `recv`/`send` is made holding this lock, after reading the
;; peer's handle under it. Recursive: a `send` may itself make a call that pumps.
(define pump-mutex (make-mutex 'recursive))

;; Idempotent: whoever swaps the pointer out frees it; everyone else sees #f.
(define (free! p ptr)
  (when ptr
    (let ((count (assq-ref counts (peer-mode p))))
      (when count (atomic-add! count -1)))
    (%free ptr)))

;; `peer-close`: an external peer's handle is swapped out under the pump lock, so once this
;; returns its `recv` and `send` are never called again (the program may close their channel).
(define (close! p)
  (free! p (if (eq? (peer-mode p) 'tcp)
               (atomic-box-swap! (peer-box p) #f)
               (with-mutex pump-mutex (atomic-box-swap! (peer-box p) #f)))))

;; The guardian's: no lock, for it runs from after-gc-hook, at any point of any thread (one
;; holding registry-mutex, say). An unreachable peer is in no pump anyway: pumps hold theirs.
(define (collect! p)
  (free! p (atomic-box-swap! (peer-box p) #f)))

(define (drain-guardian!)
  (let loop ()
    (let ((p (guardian)))
      (when p (collect! p) (loop)))))

(add-hook! after-gc-hook drain-guardian!)

(define (open? p) (atomic-box-ref (peer-box p)))

;; Guard `p`; list it under its mode when it is external. Returns `p`.
(define (register! p)
  (guardian p)
  (let ((table (assq-ref tables (peer-mode p))))
    (when table
      (with-mutex registry-mutex
        ;; Drop the entries of peers closed explicitly but still referenced elsewhere.
        (for-each (lambda (q) (hash-remove! table q))
                  (hash-fold (lambda (q _ acc) (if (open? q) acc (cons q acc))) '() table))
        (hash-set! table p #t))
      (atomic-add! (assq-ref counts (peer-mode p)) 1)))
  p)

;; The open peers of `mode` (thread or poll), as a fresh list.
(define (live-peers mode)
  (let ((table (assq-ref tables mode)))
    (with-mutex registry-mutex
      (hash-fold (lambda (q _ acc) (if (open? q) (cons q acc) acc)) '() table))))
