;;; (peer envelope): envelopes between libpeer's text and the program's Scheme data.
;;;
;;; An envelope is the datum #(from "ip" port MESSAGE), MESSAGE a datum of
;;; docs/PROTOCOL.md section 4. Out: libpeer's canonical text, read with Guile's `read`
;;; (the text is libpeer's own; Guile reads its #u8(...) as a bytevector). In: what the
;;; program's `recv` returns came from the network, so it is walked first, bounded, and only
;;; then written as text for libpeer's safe reader. Nothing is ever evaluated.

(define-module (peer envelope)
  #:use-module (rnrs bytevectors)
  #:export (envelope->bytes text->envelope))

(define max-depth 10)                   ; vectors nested at most this deep
(define max-elements 1048576)           ; data in all
(define max-chars 1048576)              ; bytes of bytevectors, characters of strings and symbols

;; The UTF-8 text of `x` when it is an envelope-shaped datum within the bounds, else #f.
;; Sharing within `x` is counted as often as it is reached, so a cycle exceeds the depth.
(define (envelope->bytes x)
  (let ((elements 0) (chars 0))
    (define (count! n-chars)
      (set! elements (+ elements 1))
      (set! chars (+ chars n-chars))
      (and (<= elements max-elements) (<= chars max-chars)))
    (define (walk x depth)
      (cond ((vector? x)
             (and (< depth max-depth)
                  (count! 0)
                  (let loop ((i 0))
                    (or (= i (vector-length x))
                        (and (walk (vector-ref x i) (+ depth 1)) (loop (+ i 1)))))))
            ((bytevector? x) (count! (bytevector-length x)))
            ((string? x) (count! (string-length x)))
            ((symbol? x) (count! (string-length (symbol->string x))))
            ;; A digit per 3.3 bits: a huge integer costs its printed length.
            ((exact-integer? x) (count! (quotient (integer-length x) 3)))
            ((boolean? x) (count! 0))
            (else #f)))
    (and (walk x 0)
         (string->utf8 (call-with-output-string (lambda (port) (write x port)))))))

;; The envelope datum of libpeer's canonical text `bytes`.
(define (text->envelope bytes)
  (call-with-input-string (utf8->string bytes) read))
