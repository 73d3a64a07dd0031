;;; Helpers shared by Chibi's two preludes (chibi-prelude.scm for the suite,
;;; chibi-child-prelude.scm for the child process of the two-process test). Included after
;;; their imports: (scheme base) (scheme char) (scheme cxr) (scheme read) (scheme write)
;;; (scheme process-context) (srfi 18) (chibi) (chibi net) (chibi filesystem) (peer).

(define (bytevector-from-list lst) (apply bytevector lst))
(define (bv-copy bv) (bytevector-copy bv))
(define (string->utf8* s) (string->utf8 s))
(define (exit-with-failures n) (exit (if (zero? n) 0 1)))
(define (temp-path name)
  (let ((dir (get-environment-variable "PEER_TEST_DIR")))
    (unless dir (error "PEER_TEST_DIR is not set (run the suite with run-chibi.sh)"))
    (string-append dir "/" name)))
(define (sleep-ms ms) (thread-sleep! (/ ms 1000.)))

;;; Writing and reading data
;;;
;;; Chibi's own `write` prints a bytevector's bytes in hex ("#xFF ", five bytes a byte), and
;;; its `read` takes time quadratic in a bytevector's length (minutes for the largest
;;; value). So the channel writes bytevectors in decimal ("255 ", as libpeer and the other
;;; two Schemes do) and reads its frames, one a line, with the small reader below; the
;;; suite's `write-to-string` is Chibi's own `write`, whose output the 1 MiB rule is about.

(define byte-texts
  (let ((v (make-vector 256)))
    (do ((i 0 (+ i 1))) ((= i 256) v) (vector-set! v i (number->string i)))))

(define (write-datum x port)
  (cond ((vector? x)
         (write-string "#(" port)
         (let loop ((i 0))
           (when (< i (vector-length x))
             (when (> i 0) (write-char #\space port))
             (write-datum (vector-ref x i) port)
             (loop (+ i 1))))
         (write-char #\) port))
        ((bytevector? x)
         (write-string "#u8(" port)
         (let loop ((i 0))
           (when (< i (bytevector-length x))
             (when (> i 0) (write-char #\space port))
             (write-string (vector-ref byte-texts (bytevector-u8-ref x i)) port)
             (loop (+ i 1))))
         (write-char #\) port))
        (else (write x port))))

(define (frame-text datum)
  (let ((port (open-output-string)))
    (write-datum datum port)
    (get-output-string port)))

;; Chibi's own `write`: the suite measures envelopes with it (the 1 MiB rule must hold for
;; what Chibi itself writes, hex bytes and all).
(define (write-to-string datum)
  (let ((port (open-output-string)))
    (write datum port)
    (get-output-string port)))

;; Chibi reads R7RS #u8(...), which libpeer writes: the suite's small texts use `read`.
(define (read-wire text) (read (open-input-string text)))

;; One datum of a frame's text (a bytevector of UTF-8): vectors, bytevectors (decimal or
;; hex bytes), strings, numbers, symbols, booleans, proper lists. Frames come from this
;; suite's own processes; anything else raises.
(define (parse-datum b)
  (define n (bytevector-length b))
  (define i 0)
  (define (peek) (if (< i n) (bytevector-u8-ref b i) -1))
  (define (fail what) (error "channel: unreadable frame" what))
  (define (space? c) (or (= c 32) (= c 10) (= c 9) (= c 13)))
  (define (delimiter? c) (or (< c 0) (space? c) (= c 40) (= c 41) (= c 34) (= c 59)))
  (define (skip-space) (when (and (>= (peek) 0) (space? (peek))) (set! i (+ i 1)) (skip-space)))
  (define (token)                        ; the text up to a delimiter
    (let ((start i))
      (let loop () (unless (delimiter? (peek)) (set! i (+ i 1)) (loop)))
      (utf8->string b start i)))
  (define (items)                        ; data up to the closing parenthesis
    (let loop ((acc '()))
      (skip-space)
      (cond ((< (peek) 0) (fail "end of text in a vector"))
            ((= (peek) 41) (set! i (+ i 1)) (reverse acc))
            (else (loop (cons (datum) acc))))))
  (define (digit c radix)                ; c's value as a digit, else #f
    (let ((v (cond ((<= 48 c 57) (- c 48)) ((<= 97 c 102) (- c 87)) ((<= 65 c 70) (- c 55))
                   (else 99))))
      (and (< v radix) v)))
  (define (byte)                         ; 255 or #xFF
    (let ((radix (if (= (peek) 35) (begin (set! i (+ i 2)) 16) 10)))
      (let loop ((v 0) (k 0))
        (let ((d (digit (peek) radix)))
          (cond (d (set! i (+ i 1)) (loop (+ (* v radix) d) (+ k 1)))
                ((and (> k 0) (<= v 255) (delimiter? (peek))) v)
                (else (fail "a byte")))))))
  ;; After #u8( : the bytes up to ). Decimal bytes (as written here) take the tight loop;
  ;; a hex one ("#xFF", as Chibi's own write has it) takes byte.
  (define (bytes)
    (let ((buf (make-bytevector (quotient (- n i) 2))))
      (let loop ((j i) (v 0) (k 0) (digits 0))
        (let ((c (if (< j n) (bytevector-u8-ref b j) -1)))
          (cond ((and (> c 47) (< c 58) (< digits 3))
                 (loop (+ j 1) (+ (* v 10) (- c 48)) k (+ digits 1)))
                ((and (> digits 0) (> v 255)) (fail "a byte"))
                ((or (= c 32) (= c 41))
                 (let ((k (if (> digits 0) (begin (bytevector-u8-set! buf k v) (+ k 1)) k)))
                   (if (= c 41)
                       (begin (set! i (+ j 1)) (bytevector-copy buf 0 k))
                       (loop (+ j 1) 0 k 0))))
                ((and (= c 35) (= digits 0))
                 (set! i j)
                 (bytevector-u8-set! buf k (byte))
                 (loop i 0 (+ k 1) 0))
                (else (fail "a byte")))))))
  (define (string-body)                  ; after the opening quote
    (let loop ((cs '()) (start i))
      (let ((c (peek)))
        (cond ((< c 0) (fail "end of text in a string"))
              ((= c 34) (set! i (+ i 1))
               (apply string-append (reverse (cons (utf8->string b start (- i 1)) cs))))
              ((= c 92)
               (let* ((before (utf8->string b start i))
                      (e (begin (set! i (+ i 2)) (integer->char (bytevector-u8-ref b (- i 1))))))
                 (loop (cons (case e ((#\n) "\n") ((#\t) "\t") (else (string e))) (cons before cs))
                       i)))
              (else (set! i (+ i 1)) (loop cs start))))))
  (define (datum)
    (skip-space)
    (let ((c (peek)))
      (set! i (+ i 1))
      (cond
       ((< c 0) (fail "end of text"))
       ((= c 40) (items))
       ((= c 34) (string-body))
       ((= c 35)
        (let ((d (peek)))
          (cond ((= d 40) (set! i (+ i 1)) (list->vector (items)))
                ((and (= d 117) (< (+ i 2) n) (= (bytevector-u8-ref b (+ i 1)) 56)
                      (= (bytevector-u8-ref b (+ i 2)) 40))
                 (set! i (+ i 3))
                 (bytes))
                (else
                 (let ((t (token)))
                   (cond ((member t '("t" "true")) #t)
                         ((member t '("f" "false")) #f)
                         ((string->number (string-append "#" t)))
                         (else (fail t))))))))
       ((= c 124)
        (let ((start i))
          (let loop () (if (or (< (peek) 0) (= (peek) 124)) #f (begin (set! i (+ i 1)) (loop))))
          (when (< (peek) 0) (fail "end of text in a symbol"))
          (set! i (+ i 1))
          (string->symbol (utf8->string b start (- i 1)))))
       (else
        (set! i (- i 1))
        (let ((t (token)))
          (or (string->number t) (string->symbol t)))))))
  (let ((d (datum)))
    (skip-space)
    (unless (= i n) (fail "text after the datum"))
    d))

;;; Channels: a connected socket from (chibi net). Frames are lines; they are written through
;;; an output port and read straight from the socket (receive! of what has arrived, never
;;; waiting), since a line can be longer than Chibi's read-line reads at once (8192).

(define-record-type <channel>
  (%make-channel fd in out pid read-lock write-lock pending frames)
  channel?
  (fd channel-fd)                        ; the socket
  (in channel-in)                        ; its input port, if one was made (kept, unused)
  (out channel-out)
  (pid channel-pid)                      ; the child's, in the parent
  (read-lock channel-read-lock)          ; one green thread at a time reads,
  (write-lock channel-write-lock)        ; and writes (apart: a long write waits for the peer)
  (pending channel-pending set-channel-pending!) ; bytes of an unfinished line, newest first
  (frames channel-frames set-channel-frames!))   ; complete lines (bytevectors), oldest first

(define (make-channel fd in out pid)
  (%make-channel fd in out pid (make-mutex 'channel-read) (make-mutex 'channel-write) '() '()))

;; A channel over an accepted socket, made non-blocking so that receive! never waits and a
;; write that must wait parks its green thread in Chibi's scheduler.
(define (socket-channel fd pid)
  (set-file-descriptor-status! fd (bitwise-ior (get-file-descriptor-status fd) open/non-block))
  (make-channel fd #f (open-output-file-descriptor fd) pid))

(define (with-lock m thunk)
  (dynamic-wind (lambda () (mutex-lock! m)) thunk (lambda () (mutex-unlock! m))))

(define (channel-send! ch datum)
  (let ((text (frame-text datum)))
    (with-lock (channel-write-lock ch)
      (lambda ()
        (write-string text (channel-out ch))
        (newline (channel-out ch))
        (flush-output-port (channel-out ch))))))

;; Splits what arrived into lines: complete ones join the frames, the rest waits.
(define (take-bytes! ch chunk)
  (let loop ((start 0) (j 0))
    (cond ((= j (bytevector-length chunk))
           (when (< start j)
             (set-channel-pending! ch (cons (bytevector-copy chunk start j) (channel-pending ch)))))
          ((= (bytevector-u8-ref chunk j) 10)
           (let ((line (apply bytevector-append
                              (reverse (cons (bytevector-copy chunk start j)
                                             (channel-pending ch))))))
             (set-channel-pending! ch '())
             (unless (= (bytevector-length line) 0)
               (set-channel-frames! ch (append (channel-frames ch) (list line))))
             (loop (+ j 1) (+ j 1))))
          (else (loop start (+ j 1))))))

;; A datum when a whole frame has arrived, else #f at once (also at the end of the stream).
(define (channel-recv ch)
  (let ((line (with-lock (channel-read-lock ch)
                (lambda ()
                  (let ((buf (make-bytevector 65536)))
                    (let fill ()                 ; what has arrived, until a frame is whole
                      (when (null? (channel-frames ch))
                        (let ((n (receive!/non-blocking (channel-fd ch) buf 0)))
                          (when (and (integer? n) (> n 0))
                            (take-bytes! ch (bytevector-copy buf 0 n))
                            (fill))))))
                  (let ((frames (channel-frames ch)))
                    (and (pair? frames)
                         (begin (set-channel-frames! ch (cdr frames)) (car frames))))))))
    (and line (parse-datum line))))
