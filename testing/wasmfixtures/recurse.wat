;; run() calls itself without end: the call stack, not linear memory, runs
;; out. A runtime must fail the call ("stack overflow") and stay up.
;; wide(n) does the same with a larger frame (i64 locals), to exhaust the
;; stack in fewer calls.
(module
  (func $run (export "run") (result i32)
    (i32.add (call $run) (i32.const 1)))
  (func $wide (export "wide") (param $n i64) (result i64)
    (local $a i64) (local $b i64) (local $c i64) (local $d i64)
    (local.set $a (i64.add (local.get $n) (i64.const 1)))
    (local.set $b (i64.mul (local.get $a) (i64.const 3)))
    (local.set $c (i64.xor (local.get $b) (local.get $n)))
    (local.set $d (i64.sub (local.get $c) (local.get $a)))
    (i64.add
      (i64.add (local.get $a) (local.get $b))
      (i64.add (local.get $c)
        (i64.add (local.get $d) (call $wide (local.get $d)))))))
