;;; binary-trees.scm - GC-heavy client workload for Guile (bench/run-client).
;;;
;;;   guile --no-auto-compile binary-trees.scm MAX-DEPTH
;;;
;;; Allocates perfect binary trees of pairs: one "stretch" tree of depth
;;; MAX+1, one long-lived tree of depth MAX kept to the end, and for each
;;; depth 4, 6 .. MAX a batch of 2^(MAX-depth+4) short-lived trees, each
;;; walked once.  The long-lived tree makes old-generation pages that the
;;; collector must not lose; the batches make garbage.  Prints one line per
;;; phase; the output is the same under every collector mode.

(define (make-tree depth)
  (if (= depth 0)
      (cons #f #f)
      (cons (make-tree (- depth 1)) (make-tree (- depth 1)))))

(define (check tree)
  (if (car tree)
      (+ 1 (check (car tree)) (check (cdr tree)))
      1))

(define (main max-depth)
  (let ((min-depth 4))
    (let ((stretch (+ max-depth 1)))
      (format #t "stretch tree of depth ~a check ~a~%" stretch (check (make-tree stretch))))
    (let ((long-lived (make-tree max-depth)))
      (do ((d min-depth (+ d 2)))
          ((> d max-depth))
        (let ((n (expt 2 (+ (- max-depth d) min-depth))))
          (do ((i 0 (+ i 1))
               (sum 0 (+ sum (check (make-tree d)))))
              ((= i n)
               (format #t "~a trees of depth ~a check ~a~%" n d sum)))))
      (format #t "long lived tree of depth ~a check ~a~%" max-depth (check long-lived)))))

(main (string->number (cadr (command-line))))
