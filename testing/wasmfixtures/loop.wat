;; loop() never returns: only a timeout or a stop ends it.
;; sum(n i64) -> i64 adds 0..n-1: a CPU-bound loop of known length, used to
;; measure what interruptible execution (WithCloseOnContextDone) costs.
(module
  (func (export "loop")
    (loop $forever (br $forever)))
  (func (export "sum") (param $n i64) (result i64)
    (local $i i64) (local $acc i64)
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $acc)))
