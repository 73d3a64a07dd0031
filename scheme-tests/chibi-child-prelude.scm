;;; Chibi's prelude for the child process of the suite's two-process test: connects to the
;;; parent on 127.0.0.1 at the port given as its argument, then runs child.scm.
;;; Started by chibi-prelude.scm's spawn-child.

(import (scheme base) (scheme char) (scheme cxr) (scheme read) (scheme write)
        (scheme process-context) (srfi 18) (srfi 151)
        (chibi net) (chibi filesystem)
        (peer))

(include "chibi-helpers.scm")

(define the-parent-channel
  (let* ((port (string->number (car (reverse (command-line)))))
         (io (open-net-io "127.0.0.1" port)))
    (unless (pair? io) (error "child: cannot connect to the parent" port))
    (make-channel (car io) (cadr io) (car (cddr io)) #f)))   ; already non-blocking

(define (parent-channel) the-parent-channel)

(include "child.scm")
