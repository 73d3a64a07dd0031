;;; Guile's prelude for scheme-tests/child.scm, the child process of the suite's two-process
;;; test: the parent's prelude (the library, the suite's helpers and the channel procedures)
;;; plus `parent-channel`. The parent (spawn-child in guile-prelude.scm) runs
;;;   guile -L bindings/guile -l guile-child-prelude.scm child.scm PORT
;;; and accepts our connection to 127.0.0.1:PORT.

(load "guile-prelude.scm")

;; Standard output is a pipe the parent never reads: whatever is printed goes to stderr.
(set-current-output-port (current-error-port))

(define parent-channel
  (let ((ch #f))
    (lambda ()
      (unless ch
        (let ((s (socket PF_INET SOCK_STREAM 0))
              (port (string->number (cadr (command-line)))))
          (connect s AF_INET (inet-pton AF_INET "127.0.0.1") port)
          (set! ch (make-channel (socket-port! s) #f #f))))
      ch)))
