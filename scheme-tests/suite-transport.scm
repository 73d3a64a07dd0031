;;; The Scheme suite, part 3 (after suite-network.scm; see the head of suite.scm): the draft's
;;; own form, (peer uid recv send replication [options]), whose messages the program moves as
;;; Scheme data: envelopes #(from "ip" port MESSAGE).

;;; ---------------------------------------------------------------------------------------
;;; An in-memory network: an association list from "ip port" to a queue (a vector holding the
;;; list of waiting envelopes, oldest first). Each queue starts with junk, which the library
;;; must drop without harm: a program's network is not trusted.

(define (address-key ip port) (string-append ip " " (number->string port)))

(define (make-network) (vector '() 0 0))   ; queues, envelopes delivered, largest big message

;; Data no envelope can be: wrong types, wrong shapes, a cyclic vector, deep nesting.
(define (junk)
  (let ((cyclic (vector 'from "127.0.0.1" 1 #f))
        (deep (let loop ((i 0) (v (vector 'ref 1)))
                (if (= i 40) v (loop (+ i 1) (vector v))))))
    (vector-set! cyclic 3 cyclic)
    (list 'junk (list 'from "127.0.0.1" 1 (vector 'iam 1 #f)) "text" 3.5 (bytes 3 0)
          (vector 'from "127.0.0.1") (vector 'from 1 2 3) (vector 'from "127.0.0.1" 1 (vector 'nope))
          (vector 'from "127.0.0.1" -1 (vector 'iam 1 #f)) (vector 'to "127.0.0.1" 1 (vector 'iam 1 #f))
          cyclic deep)))

(define (network-queue net ip port)
  (let ((entry (assoc (address-key ip port) (vector-ref net 0))))
    (and entry (cdr entry))))

(define (network-add! net ip port)
  (vector-set! net 0 (cons (cons (address-key ip port) (vector (junk))) (vector-ref net 0))))

;; The written size of an envelope carrying a big value (a `set` or `value` message whose
;; second element is a bytevector of more than 100,000 bytes), else 0.
(define (big-envelope-size env)
  (let ((msg (and (vector? env) (= (vector-length env) 4) (vector-ref env 3))))
    (if (and (vector? msg) (> (vector-length msg) 1) (bytevector? (vector-ref msg 1))
             (> (bytevector-length (vector-ref msg 1)) 100000))
        (bytevector-length (string->utf8* (write-to-string env)))
        0)))

(define (network-send net)
  (lambda (ip port envelope)
    (let ((q (network-queue net ip port)))
      (vector-set! net 2 (max (vector-ref net 2) (big-envelope-size envelope)))
      (when q
        (vector-set! net 1 (+ (vector-ref net 1) 1))
        (vector-set! q 0 (append (vector-ref q 0) (list envelope)))))))

(define (network-recv net ip port)
  (lambda ()
    (let* ((q (network-queue net ip port))
           (items (vector-ref q 0)))
      (if (null? items)
          #f
          (begin (vector-set! q 0 (cdr items))
                 (car items))))))

(define (at ip port) (list (cons 'ip ip) (cons 'port port)))

(group "external transport: 5 peers on an in-memory network, served by the library"
  (lambda ()
    (let ((net (make-network))
          (peers '()))
      (with-peers
       (lambda () peers)
       (lambda ()
         (do ((port 1 (+ port 1))) ((= port 5))
           (network-add! net "127.0.0.1" port)
           (set! peers (append peers (list (peer (peer-random-uid) (network-recv net "127.0.0.1" port)
                                                 (network-send net) 5 (at "127.0.0.1" port))))))
         ;; The draft's 4-argument form: the address comes from the uid.
         (let* ((uid (peer-random-uid))
                (p (peer uid (lambda () #f) (lambda (ip port envelope) #f) 5))
                (ip (peer-ip p))
                (port (peer-port p)))
           (peer-close p)
           (network-add! net ip port)
           (let ((p (peer uid (network-recv net ip port) (network-send net) 5)))
             (set! peers (append peers (list p)))
             (check "external: the 4-argument form is a peer" (peer? p))
             (check "external: its address is a unique local IPv6 one"
                    (and (string? ip) (> (string-length ip) 2) (string=? (substring ip 0 2) "fd")))
             (check "external: the same uid, the same address" (and (equal? (peer-ip p) ip) (= (peer-port p) port)))
             (check "external: peer-uid" (equal? (peer-uid p) uid))))
         (check "external: explicit address" (and (= (peer-port (car peers)) 1) (equal? (peer-ip (car peers)) "127.0.0.1")))
         (check "external: every peer connects to the first"
                (let loop ((ps (cdr peers)))
                  (or (null? ps)
                      (and (eq? (peer-connect (car ps) "127.0.0.1" 1) #t) (loop (cdr ps))))))
         (check "external: messages went through the program's send" (> (vector-ref net 1) 0))
         (check "external: the junk in every queue was consumed"
                (let loop ((qs (vector-ref net 0)))
                  (or (null? qs)
                      (and (not (member 'junk (vector-ref (cdar qs) 0))) (loop (cdr qs))))))
         (for-each peer-bootstrap peers)
         (check-values "external: " peers)
         (check-bags "external: " peers
                     (list (list-ref peers 0) (list-ref peers 1) (list-ref peers 2))
                     (list (list-ref peers 3))
                     (list-ref peers 4))
         (check-namespaces "external: " peers)
         (let ((stats (peer-stats (list-ref peers 1))))
           (check "external: peer-stats counts the requests" (> (stat stats 'requests-received) 0))
           (check "external: no TCP connections" (= (stat stats 'open-connections) 0)))
         ;; The largest value: its messages serialize, as this Scheme writes them, within 1 MiB.
         (let* ((n peer-max-external-value-size)
                (big (make-bytevector n 255))
                (key (peer-set (list-ref peers 1) big)))
           (check "external: a value of peer-max-external-value-size bytes round-trips"
                  (equal? (peer-ref (list-ref peers 3) key) big))
           (check "external: its envelopes were measured" (> (vector-ref net 2) (* 4 (- n 1))))
           (check "external: every envelope serializes within 1 MiB" (<= (vector-ref net 2) 1048576)))
         (check-raises "external: peer-set past peer-max-external-value-size"
                       (lambda () (peer-set (car peers) (bytes (+ peer-max-external-value-size 1) 0))))
         ;; No one at port 9: the request times out and connect answers #f.
         (check "external: peer-connect to an address nobody holds is #f"
                (eq? (peer-connect (car peers) "127.0.0.1" 9) #f))
         ;; While external peers live, calls on a TCP peer work as ever.
         (let* ((gone (peer-open (peer-random-uid) "127.0.0.1" 0))
                (port (peer-port gone))
                (tcp (peer-open (peer-random-uid) "127.0.0.1" 0)))
           (peer-close gone)
           (set! peers (cons tcp peers))
           (check "external: a tcp peer-connect to a closed port meanwhile is #f"
                  (eq? (peer-connect tcp "127.0.0.1" port) #f))))))))

(group "external transport: derived addresses"
  (lambda ()
    (let* ((a (peer-random-uid))
           (b (bv-copy a)))
      ;; b differs from a in its last byte only; the first two bytes no longer decide.
      (bytevector-u8-set! b 31 (if (= (bytevector-u8-ref a 31) 0) 1 0))
      (let ((pa (peer a (lambda () #f) (lambda (ip port envelope) #f) 5))
            (pb (peer b (lambda () #f) (lambda (ip port envelope) #f) 5)))
        (with-peers
         (lambda () (list pa pb))
         (lambda ()
           (check "derived: two uids sharing 31 bytes get two addresses"
                  (not (and (equal? (peer-ip pa) (peer-ip pb)) (= (peer-port pa) (peer-port pb)))))
           (check "derived: their ips differ" (not (equal? (peer-ip pa) (peer-ip pb))))))))))

;;; ---------------------------------------------------------------------------------------
;;; serve 'poll: the program moves the messages itself, with peer-poll

(group "external transport: serve poll and peer-poll"
  (lambda ()
    (let* ((inbox '())
           (outbox '())
           (recv (lambda ()
                   (if (null? inbox)
                       #f
                       (let ((d (car inbox))) (set! inbox (cdr inbox)) d))))
           (send (lambda (ip port envelope) (set! outbox (append outbox (list (list ip port envelope))))))
           (p (peer (peer-random-uid) recv send 5
                    (list (cons 'ip "127.0.0.1") (cons 'port 7001) (cons 'serve 'poll)))))
      (with-peers
       (lambda () (list p))
       (lambda ()
         (check "poll: nothing waiting, nothing moves" (eqv? (peer-poll p) 0))
         ;; An `iam` from 127.0.0.1:7002 and junk: peer-poll takes both in; libpeer's thread
         ;; answers the request, and a later peer-poll hands the reply to send. The peer may
         ;; also send 7002 an iam of its own (a contact joins the routing table only once it
         ;; has answered one at its address), so the reply is looked for among what was sent.
         (set! inbox (list (vector 'from "127.0.0.1" 7002 (vector 'iam (bytes->integer (peer-random-uid)) 7002))
                           (list 'junk)))
         (check "poll: peer-poll moved the two that waited" (eqv? (peer-poll p) 2))
         (let* ((message-kind             ; of an outbox entry (ip port envelope), else #f
                 (lambda (out)
                   (let ((envelope (car (cddr out))))
                     (and (vector? envelope) (= (vector-length envelope) 4)
                          (let ((m (vector-ref envelope 3)))
                            (and (vector? m) (> (vector-length m) 0) (vector-ref m 0)))))))
                (welcomes
                 (lambda ()
                   (let loop ((l outbox) (acc '()))
                     (cond ((null? l) (reverse acc))
                           ((eq? (message-kind (car l)) 'welcome) (loop (cdr l) (cons (car l) acc)))
                           (else (loop (cdr l) acc)))))))
           (let loop ((i 0))
             (when (and (< i 400) (null? (welcomes)))
               (peer-poll p)
               (sleep-ms 5)
               (loop (+ i 1))))
           (check "poll: the reply came out through peer-poll" (= (length (welcomes)) 1))
           (check "poll: all it sent goes back to the sender"
                  (let loop ((l outbox))
                    (or (null? l)
                        (and (equal? (car (car l)) "127.0.0.1") (eqv? (cadr (car l)) 7002)
                             (loop (cdr l))))))
           (check "poll: besides the reply it sent only its own iam"
                  (let loop ((l outbox))
                    (or (null? l)
                        (and (memq (message-kind (car l)) '(welcome iam)) (loop (cdr l))))))
           (when (pair? (welcomes))
             (let ((envelope (car (cddr (car (welcomes))))))
               (check "poll: send gets the envelope as a datum: #(from ip port message)"
                      (and (vector? envelope) (= (vector-length envelope) 4)
                           (eq? (vector-ref envelope 0) 'from)
                           (equal? (vector-ref envelope 1) "127.0.0.1")
                           (eqv? (vector-ref envelope 2) 7001))))))
         (peer-close p)
         (check-raises "poll: peer-poll of a closed peer" (lambda () (peer-poll p))))))))

;;; ---------------------------------------------------------------------------------------
;;; Exceptions raised by the program's recv and send reach the program at once, as raised

(group "external transport: exceptions from recv and send"
  (lambda ()
    (let ((peers '()))
      (with-peers
       (lambda () peers)
       (lambda ()
         ;; serve 'thread: the library thread's send raises while connect waits on the peer.
         (let* ((boom (list 'boom))
                (p (peer (peer-random-uid) (lambda () #f) (lambda (ip port envelope) (raise boom)) 5
                         (at "127.0.0.1" 7101))))
           (set! peers (cons p peers))
           (check "exceptions: send's exception is what the waiting call raises"
                  (eq? (caught (lambda () (peer-connect p "127.0.0.1" 7102))) boom)))
         ;; serve 'poll: the program's own thread calls recv, in peer-poll or in a call.
         (let* ((bang (list 'bang))
                (p (peer (peer-random-uid) (lambda () (raise bang)) (lambda (ip port envelope) #f) 5
                         (list (cons 'ip "127.0.0.1") (cons 'port 7103) (cons 'serve 'poll)))))
           (set! peers (cons p peers))
           (check "exceptions: recv's exception comes out of peer-poll" (eq? (caught (lambda () (peer-poll p))) bang))
           (check "exceptions: recv's exception comes out of a call that pumps"
                  (eq? (caught (lambda () (peer-connect p "127.0.0.1" 7104))) bang))
           ;; Every blocking call pumps every poll-mode peer, so while this one lives any
           ;; call may raise `bang`: close it before the checks below.
           (peer-close p))
         ;; serve 'thread and no call waiting: the peer's on-error procedure gets it.
         (let* ((oops (list 'oops))
                (seen '())
                (request (list (vector 'from "127.0.0.1" 7106 (vector 'iam (bytes->integer (peer-random-uid)) 7106))))
                (p (peer (peer-random-uid)
                         (lambda () (if (null? request) #f (let ((r (car request))) (set! request '()) r)))
                         (lambda (ip port envelope) (when (eqv? port 7106) (raise oops)))
                         5
                         (list (cons 'ip "127.0.0.1") (cons 'port 7105)
                               (cons 'on-error (lambda (e) (set! seen (cons e seen))))))))
           (set! peers (cons p peers))
           (let loop ((i 0))                    ; at most 5 s
             (when (and (< i 500) (null? seen))
               (sleep-ms 10)
               (loop (+ i 1))))
           (check "exceptions: with no call waiting, on-error gets send's exception"
                  (and (pair? seen) (eq? (car seen) oops)))
           (check "exceptions: and a later call is not charged with it"
                  (eq? (peer-forget p (peer-random-uid)) #f))))))))

;;; ---------------------------------------------------------------------------------------
;;; Two OS processes: the child (scheme-tests/child.scm) makes one peer of the draft's form on
;;; a channel the program owns and then idles; this process connects, stores, publishes and
;;; signs through it, closes its first peer, and reads it all back with a second.
;;; Frames on the channel: #(ip port ENVELOPE) addressed to a peer, #(ready uid ip port) from
;;; the child once its peer exists, #(quit) to the child.

;; A peer of this process at 127.0.0.1:`port` on the channel `ch`; frames addressed to
;; others are dropped. `measure` gets the written size of each envelope with a big value.
(define (channel-peer ch port measure)
  (peer (peer-random-uid)
        (lambda ()
          (let loop ((i 0))
            (let ((f (channel-recv ch)))
              (cond ((not f) #f)
                    ((and (vector? f) (= (vector-length f) 3)
                          (equal? (vector-ref f 0) "127.0.0.1") (eqv? (vector-ref f 1) port))
                     (vector-ref f 2))
                    ((< i 64) (loop (+ i 1)))
                    (else #f)))))
        (lambda (ip port envelope)
          (measure (big-envelope-size envelope))
          (channel-send! ch (vector ip port envelope)))
        5
        (at "127.0.0.1" port)))

(define (wait-ready ch)                  ; at most 30 s for the child to start
  (let loop ((i 0))
    (let ((f (channel-recv ch)))
      (cond ((and (vector? f) (= (vector-length f) 4) (eq? (vector-ref f 0) 'ready)) f)
            ((>= i 3000) #f)
            (else (sleep-ms 10) (loop (+ i 1)))))))

(group "draft form: two processes, one idle"
  (lambda ()
    (let* ((ch (spawn-child))
           (ready (wait-ready ch))
           (biggest 0)
           (measure (lambda (n) (set! biggest (max biggest n))))
           (peers '()))
      (check "two processes: the child made its peer" (and ready #t))
      (dynamic-wind
       (lambda () #f)
       (lambda ()
         (when ready
           (let* ((child-uid (vector-ref ready 1))
                  (child-ip (vector-ref ready 2))
                  (child-port (vector-ref ready 3))
                  (a (channel-peer ch 5001 measure))
                  (value (peer-random-uid))
                  (big (let ((b (make-bytevector peer-max-external-value-size 0)))
                         (do ((i 0 (+ i 1))) ((= i (bytevector-length b)) b)
                           (bytevector-u8-set! b i (- 255 (remainder i 7))))))
                  (bag (peer-random-uid))
                  (kp (keypair-list))
                  (name (peer-random-uid)))
             (set! peers (list a))
             (check "two processes: connect to the idle child" (eq? (peer-connect a child-ip child-port) #t))
             (peer-bootstrap a)
             (let ((key (peer-set a value))
                   (big-key (peer-set a big)))
               (peer-bag-publish a bag value)
               (let ((sig (peer-namespace-set a (car kp) (cadr kp) name value)))
                 (peer-close a)
                 ;; A second peer, with nothing of its own: what it reads, the child served.
                 (let ((b (channel-peer ch 5002 measure)))
                   (set! peers (list b))
                   (check "two processes: a second peer connects" (eq? (peer-connect b child-ip child-port) #t))
                   (check "two processes: the child holds the value" (equal? (peer-ref b key) value))
                   (check "two processes: and the largest value" (equal? (peer-ref b big-key) big))
                   (check "two processes: its envelopes serialized within 1 MiB"
                          (and (> biggest (* 4 (- peer-max-external-value-size 1))) (<= biggest 1048576)))
                   (check "two processes: the child holds the bag entry"
                          (vector-member? (peer-bag-popular-at b child-uid bag) value))
                   (check "two processes: the child holds the namespace record"
                          (equal? (peer-namespace-ref-at b child-uid (cadr kp) name) value))
                   (check "two processes: the record, pinned by its signature"
                          (equal? (peer-namespace-ref b (cadr kp) name sig) value))))))))
       (lambda ()
         (for-each (lambda (p) (guard (e (#t #f)) (peer-close p))) peers)
         (guard (e (#t #f)) (channel-send! ch (vector 'quit)))
         (check "two processes: the child exited cleanly" (channel-close! ch)))))))
