;;; work.lsp - allocation-heavy Lisp for tests/clients/work/ecl.
(defun fib (n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))

(defun churn (n)
  "Fill an EQUAL hash table, keep every 7th entry in a list as well."
  (let ((h (make-hash-table :test #'equal)) (acc nil))
    (dotimes (i n)
      (setf (gethash (format nil "k~D" i) h)
            (list i (* i i) (make-string 10 :initial-element #\a)))
      (when (zerop (mod i 7))
        (push (gethash (format nil "k~D" (floor i 2)) h) acc)))
    (list (hash-table-count h) (length acc) (reduce #'+ (mapcar #'first acc)))))

(defun tree (d)
  (if (zerop d) (list d) (cons (tree (1- d)) (tree (1- d)))))

(defun count-leaves (x)
  (if (atom x) 1 (+ (count-leaves (car x)) (count-leaves (cdr x)))))

(defun weak-survivors (n)
  "Weak-key table: only the keys still referenced survive a collection."
  (let ((h (make-hash-table :test #'eq :weakness :key)) (keep nil))
    (dotimes (i n)
      (let ((k (list i)))
        (setf (gethash k h) i)
        (when (zerop (mod i 10)) (push k keep))))
    (si:gc t)
    (list (length keep)
          (loop for k in keep always (= (gethash k h) (car k))))))

(print (fib 25))
(print (churn 200000))
(print (length (sort (loop for i below 200000 collect (mod (* i 7919) 100003)) #'<)))
(print (count-leaves (tree 17)))
(print (weak-survivors 100000))
(print (expt 3 2000))
(terpri)
