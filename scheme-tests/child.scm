;;; The child process of the suite's two-process test (suite-transport.scm): one peer of the
;;; draft's 4-argument form, its address derived from its uid, whose envelopes travel over
;;; the channel to the parent process. Once it has told the parent its address it idles:
;;; it makes no call into the library until the parent says quit, so everything the parent
;;; gets from it was served by the library on its own. Loaded after the implementation's
;;; child prelude, which provides (parent-channel), channel-send!, channel-recv and sleep-ms.
;;; Nothing may be written to standard output: for Chez it is the channel.

(define ch (parent-channel))
(define quit #f)
(define me #f)                          ; (ip . port) once the peer exists

;; Frames: #(ip port ENVELOPE) addressed to a peer, or #(quit).
(define (recv)
  (let loop ((i 0))
    (let ((frame (channel-recv ch)))
      (cond ((not frame) #f)
            ((and (vector? frame) (= (vector-length frame) 1)) (set! quit #t) #f)
            ((and me (vector? frame) (= (vector-length frame) 3)
                  (equal? (vector-ref frame 0) (car me)) (eqv? (vector-ref frame 1) (cdr me)))
             (vector-ref frame 2))
            ((< i 64) (loop (+ i 1)))   ; not for this peer: dropped
            (else #f)))))

(define (send ip port envelope)
  (channel-send! ch (vector ip port envelope)))

(define p (peer (peer-random-uid) recv send 5))
(set! me (cons (peer-ip p) (peer-port p)))
(channel-send! ch (vector 'ready (peer-uid p) (peer-ip p) (peer-port p)))

;; Idle, at most 60 s: the library's thread serves the peer meanwhile.
(let loop ((i 0))
  (unless (or quit (>= i 600))
    (sleep-ms 100)
    (loop (+ i 1))))
(peer-close p)
(exit 0)
