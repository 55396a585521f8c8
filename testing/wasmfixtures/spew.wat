;; A WASI preview1 command that writes far more than any output cap.
;; _start writes 16 MiB ('x' in 64 KiB writes) to stdout and exits 0.
;; stderr() writes 16 MiB to stderr, then exits with code 1.
;; forever() writes to stdout until it is stopped.
;;
;; Memory: iovec at 0, count at 8, 64 KiB of 'x' from 65536 (second page).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  (memory (export "memory") 2)

  (func $fill
    (memory.fill (i32.const 65536) (i32.const 120) (i32.const 65536))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536)))

  ;; write64k writes 64 KiB to fd n times (-1: 2^32 times, without end in practice).
  (func $write64k (param $fd i32) (param $n i32)
    (call $fill)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $n)))
        (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $more))))

  (func (export "_start")
    (call $write64k (i32.const 1) (i32.const 256)))
  (func (export "stderr")
    (call $write64k (i32.const 2) (i32.const 256))
    (call $proc_exit (i32.const 1)))
  (func (export "forever")
    (call $write64k (i32.const 1) (i32.const -1))))
