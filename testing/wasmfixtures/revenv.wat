;; A WASI preview1 command that prints its environment, each KEY=VALUE
;; entry reversed (EULAV=YEK), one a line: proof that a module got a value
;; without the value itself appearing in its output.
;;
;; Memory: sizes at 0/4, iovec at 16, count at 32, "\n" at 40,
;; environ pointers at 4096, environ strings at 65536 (second page).
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 40) "\n")

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; reverse the bytes [p, p+n) in place
  (func $reverse (param $p i32) (param $n i32)
    (local $i i32) (local $j i32) (local $c i32)
    (local.set $i (local.get $p))
    (local.set $j (i32.sub (i32.add (local.get $p) (local.get $n)) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_s (local.get $i) (local.get $j)))
        (local.set $c (i32.load8_u (local.get $i)))
        (i32.store8 (local.get $i) (i32.load8_u (local.get $j)))
        (i32.store8 (local.get $j) (local.get $c))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $j (i32.sub (local.get $j) (i32.const 1)))
        (br $next))))

  (func (export "_start")
    (local $count i32) (local $k i32) (local $s i32) (local $n i32)
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $environ_get (i32.const 4096) (i32.const 65536)))
    (local.set $count (i32.load (i32.const 0)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $count)))
        (local.set $s (i32.load (i32.add (i32.const 4096) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $n (call $strlen (local.get $s)))
        (call $reverse (local.get $s) (local.get $n))
        (call $write (local.get $s) (local.get $n))
        (call $write (i32.const 40) (i32.const 1))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next)))))
