;;; (peer scratch): per-thread memory for the arguments and results of C calls.
;;;
;;; `bytevector->pointer` costs microseconds in Guile 3.0.8 (it registers a weak reference),
;;; ten times a plain foreign call. So each thread keeps one scratch bytevector whose slot
;;; addresses are computed once: 32/64-byte arguments are copied into slots, results copied
;;; out of them. A call takes the scratch for its duration (a nested call, say from a `send`
;;; run by the pump, gets a fresh one) and gives it back when it returns normally.

(define-module (peer scratch)
  #:use-module (system foreign)
  #:use-module (rnrs bytevectors)
  #:use-module (srfi srfi-9)
  #:use-module (peer ffi)
  #:export (with-scratch put! slot get scratch-bv scratch-out scratch-len scratch-big
            scratch-read-pointer scratch-read-size input-pointer big-offset big-size))

(define slot-size 64)                   ; fits a signature, or an IP text (PEER_IP_BUF_LEN)
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

(define (give-scratch! s) (fluid-set! scratch-fluid s))

(define-syntax-rule (with-scratch s body ...)
  (let* ((s (take-scratch!))
         (result (begin body ...)))
    (give-scratch! s)
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

(define (scratch-read-pointer s)
  (make-pointer (bytevector-uint-ref (scratch-bv s) out-offset (native-endianness) ptr-size)))
(define (scratch-read-size s)
  (bytevector-uint-ref (scratch-bv s) len-offset (native-endianness) size-t-size))

;; A pointer to a copy of `bv`: in the big area when it fits, else its own storage.
(define (input-pointer s bv)
  (let ((n (bytevector-length bv)))
    (if (<= n big-size)
        (begin (bytevector-copy! bv 0 (scratch-bv s) big-offset n) (scratch-big s))
        (bytevector->pointer bv))))
