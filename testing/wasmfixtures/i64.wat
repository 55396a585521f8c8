;; 64-bit integer params: add64(i64, i64) -> i64.
(module
  (func (export "add64") (param $a i64) (param $b i64) (result i64)
    (i64.add (local.get $a) (local.get $b))))
