;;;; binary-trees.lsp - GC-heavy client workload for ECL (bench/run-client).
;;;;
;;;;   ecl --norc --shell binary-trees.lsp MAX-DEPTH
;;;;
;;;; The same program as binary-trees.scm, with conses as tree nodes: a
;;;; stretch tree of depth MAX+1, a long-lived tree of depth MAX kept to the
;;;; end, and batches of short-lived trees of depths 4, 6 .. MAX.  Loaded by
;;;; ECL's bytecode compiler; prints the same lines as the Guile version.

(defun make-tree (depth)
  (if (= depth 0)
      (cons nil nil)
      (cons (make-tree (- depth 1)) (make-tree (- depth 1)))))

(defun check (tree)
  (if (car tree)
      (+ 1 (check (car tree)) (check (cdr tree)))
      1))

(defun main (max-depth)
  (let ((min-depth 4))
    (let ((stretch (+ max-depth 1)))
      (format t "stretch tree of depth ~a check ~a~%" stretch (check (make-tree stretch))))
    (let ((long-lived (make-tree max-depth)))
      (loop for d from min-depth to max-depth by 2
            do (let ((n (expt 2 (+ (- max-depth d) min-depth)))
                     (sum 0))
                 (dotimes (i n)
                   (incf sum (check (make-tree d))))
                 (format t "~a trees of depth ~a check ~a~%" n d sum)))
      (format t "long lived tree of depth ~a check ~a~%" max-depth (check long-lived)))))

(main (parse-integer (car (last ext:*command-args*))))
(finish-output)
