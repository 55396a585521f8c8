;; Grows its memory one page at a time until memory.grow fails (-1 at the
;; runtime's limit), the way a leaking or hostile module would, then
;; returns the memory size in pages.
;; run() writes a byte every 4 KiB of each new page, so the host must back
;; every page with real memory (the worst case for the host's RSS).
;; grow() only grows: untouched pages cost a runtime with lazily committed
;; memory nothing, and a runtime that copies on growth a lot.
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $old i32) (local $at i32) (local $end i32)
    (block $full
      (loop $more
        (local.set $old (memory.grow (i32.const 1)))
        (br_if $full (i32.eq (local.get $old) (i32.const -1)))
        (local.set $at (i32.mul (local.get $old) (i32.const 65536)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (loop $touch
          (i32.store8 (local.get $at) (i32.const 1))
          (local.set $at (i32.add (local.get $at) (i32.const 4096)))
          (br_if $touch (i32.ne (local.get $at) (local.get $end))))
        (br $more)))
    (memory.size))
  (func (export "grow") (result i32)
    (block $full
      (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (memory.size)))
