;; Chez prelude of the suite's child process (scheme-tests/child.scm), started by the parent's
;; spawn-child (chez-prelude.ss) as
;;   scheme --libdirs bindings/chez --script scheme-tests/chez-child-prelude.ss scheme-tests/child.scm
;; Its standard input and output are the channel to the parent, so nothing but channel
;; datums may reach standard output: the Scheme output ports are sent to standard error
;; first. Then chez-prelude.ss gives the suite's helpers and loads child.scm.
(import (chezscheme))

(define parent-transcoder
  (make-transcoder (utf-8-codec) (eol-style lf) (error-handling-mode raise)))
(define parent-in (standard-input-port (buffer-mode block) parent-transcoder))
(define parent-out (standard-output-port (buffer-mode block) parent-transcoder))
(current-output-port (current-error-port))
(console-output-port (console-error-port))

;; The channel to the parent (channel-send!, channel-recv, channel-close! of chez-prelude.ss;
;; closing it only closes the ports: there is no child process to wait for).
(define (parent-channel) (make-channel parent-in parent-out #f #f))

(load (string-append (path-parent (car (command-line))) "/chez-prelude.ss"))
