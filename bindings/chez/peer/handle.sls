;; (peer handle): peer records and the lifetime of their C handles.
;;
;; - A handle is a uptr in a mutable cell; peer-close and a guardian share one idempotent
;;   free, so a handle is freed once. The guardian is drained at the start of each call into
;;   the library and by the library thread, never from collect-request-handler: freeing joins
;;   the peer's thread.
;; - External peers are also listed weakly, for the pumps: the list must not keep a peer the
;;   program dropped alive.
(library (peer handle)
  (export make-peer-record peer? peer-record-cell peer-record-recv peer-record-send
          peer-record-mode peer-record-on-error peer-record-waiters peer-record-waiters-set!
          make-handle handle-ptr free-handle! register! drain! live-externals live-ptr ptr-of)
  (import (chezscheme) (peer ffi) (peer error))

  ;; The cell is all the guardian keeps: it must not reach recv/send, whose closures often
  ;; reach the peer record itself (a routing table), which would keep the record alive.
  (define-record-type handle (fields (mutable ptr)))

  ;; recv, send, mode (thread or poll), on-error: #f for a TCP peer. waiters: the blocking
  ;; calls now waiting on this peer (see (peer transport)).
  (define-record-type (peer-record make-peer-record peer?)
    (fields cell recv send mode on-error (mutable waiters))
    (opaque #t) (sealed #t))

  (define registry-mutex (make-mutex))
  (define peer-guardian (make-guardian))
  (define externals '())                        ; built with weak-cons

  (define (live-ptr rec) (handle-ptr (peer-record-cell rec)))

  (define (free-handle! cell)
    (let ([ptr (with-mutex registry-mutex
                 (let ([ptr (handle-ptr cell)]) (handle-ptr-set! cell 0) ptr))])
      (unless (eqv? ptr 0) (%free ptr))))

  (define (live? r) (and (not (bwp-object? r)) (not (eqv? (live-ptr r) 0))))

  (define (prune-externals!)                    ; call with registry-mutex held
    (set! externals
      (let loop ([l externals])
        (cond [(null? l) '()]
              [(live? (car l)) (weak-cons (car l) (loop (cdr l)))]
              [else (loop (cdr l))]))))

  ;; Frees the handles of peers the program dropped without closing.
  (define (drain!)
    (let loop ([dropped #f])
      (let ([cell (peer-guardian)])
        (if cell
            (begin (free-handle! cell) (loop #t))
            (when dropped (with-mutex registry-mutex (prune-externals!)))))))

  ;; The live external peers whose mode is `mode` (any mode when #f), as a strong list.
  (define (live-externals mode)
    (with-mutex registry-mutex
      (let loop ([l externals] [acc '()])
        (cond [(null? l) (reverse acc)]
              [(and (live? (car l)) (or (not mode) (eq? (peer-record-mode (car l)) mode)))
               (loop (cdr l) (cons (car l) acc))]
              [else (loop (cdr l) acc)]))))

  (define (register! rec)
    (peer-guardian rec (peer-record-cell rec))
    (when (peer-record-mode rec)
      (with-mutex registry-mutex
        (prune-externals!)
        (set! externals (weak-cons rec externals)))))

  (define status-closed (status-code 'closed))

  ;; The live handle of p, or a raised error.
  (define (ptr-of who p)
    (unless (peer? p) (raise-invalid who "not a peer" p))
    (let ([ptr (live-ptr p)])
      (when (eqv? ptr 0) (raise-peer-error who status-closed (%strerror status-closed) (list p)))
      ptr))

  (define writer-installed          ; a definition: Chez wants no expression before one
    (record-writer (record-type-descriptor peer-record)
      (lambda (r port wr)
        (let ([ptr (live-ptr r)])
          (if (eqv? ptr 0)
              (display "#<peer closed>" port)
              (fprintf port "#<peer ~a>" (%port ptr))))))))
