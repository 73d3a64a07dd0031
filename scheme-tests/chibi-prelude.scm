;;; Chibi's prelude for the suite (the files scheme-tests/suite-files lists): the library
;;; and the helpers the suite expects (see the head of suite.scm). run-chibi.sh makes one
;;; program of it followed by the suite's files.

(import (scheme base) (scheme char) (scheme cxr) (scheme read) (scheme write)
        (scheme process-context) (srfi 18) (srfi 151)
        (only (chibi) print-exception)
        (chibi net) (chibi filesystem) (only (chibi modules) module-ref)
        (peer))

(include "chibi-helpers.scm")

;; How Chibi itself prints the raised object (its REPL's "ERROR in WHO: message: irritants").
(define (printed-error e)
  (let ((port (open-output-string)))
    (print-exception e port)
    (get-output-string port)))

;; The text of a raised object: Chibi's own printed form (it names the procedure).
(define (error-text e)
  (let ((text (printed-error e)))
    (if (and (positive? (string-length text))
             (char=? (string-ref text (- (string-length text) 1)) #\newline))
        (substring text 0 (- (string-length text) 1))
        text)))

;;; The child process

;; From (peer)'s shared object, not exported (see bindings/chibi/peer-process.c):
;; posix_spawn, waitpid, kill, and the port a socket is bound to.
(define spawn-process (module-ref '(peer) '%spawn-process))
(define reap-process (module-ref '(peer) '%reap-process))
(define kill-process (module-ref '(peer) '%kill-process))
(define socket-port (module-ref '(peer) '%socket-port))

(define (env name)
  (or (get-environment-variable name) (error "not set (run the suite with run-chibi.sh)" name)))

;; The child's command: the same Chibi with the same module path (run-chibi.sh sets these),
;; on the child prelude, with the port to connect to.
(define (child-command port)
  (append (list (env "PEER_CHIBI"))
          (let loop ((dirs (env "PEER_CHIBI_MODULE_PATH")) (acc '()))
            (let ((i (let find ((i 0))
                       (cond ((= i (string-length dirs)) #f)
                             ((char=? (string-ref dirs i) #\:) i)
                             (else (find (+ i 1)))))))
              (if i
                  (loop (substring dirs (+ i 1) (string-length dirs))
                        (cons (substring dirs 0 i) (cons "-I" acc)))
                  (reverse (cons dirs (cons "-I" acc))))))
          (list (env "PEER_CHIBI_CHILD") (number->string port))))

;; Listens on 127.0.0.1, port 0; starts the child; accepts its connection within 30 s.
(define (spawn-child)
  (let* ((listener (make-listener-socket (get-address-info "127.0.0.1" 0)))
         (port (socket-port listener))
         (_ (set-file-descriptor-status!
             listener (bitwise-ior (get-file-descriptor-status listener) open/non-block)))
         (pid (spawn-process (child-command port)))
         (addr (get-address-info "127.0.0.1" 0))
         ;; accept parks its green thread until a connection comes: wait for it, bounded.
         (acceptor (make-thread
                    (lambda ()
                      (accept listener (address-info-address addr)
                              (address-info-address-length addr)))))
         (fd (begin (thread-start! acceptor)
                    (if (> pid 0) (thread-join! acceptor 30 #f) #f))))
    (close-file-descriptor listener)
    (cond ((and (> pid 0) fd (>= (socket-port fd) 0)) (socket-channel fd pid))
          (else (when (> pid 0) (kill-process pid) (reap-process pid #f))
                (error "spawn-child: the child did not connect" pid)))))

;; Closes the channel, then waits for the child: at most 10 s, then it is killed. #t when
;; it exited with status 0.
(define (channel-close! ch)
  (guard (e (#t #f)) (close-port (channel-out ch)))
  (guard (e (#t #f)) (close-file-descriptor (channel-fd ch)))
  (let ((pid (channel-pid ch)))
    (let loop ((i 0))
      (let ((status (reap-process pid #t)))
        (cond ((>= status 0) (= status 0))
              ((= status -2) #f)
              ((< i 200) (sleep-ms 50) (loop (+ i 1)))
              (else (kill-process pid) (reap-process pid #f) #f))))))
