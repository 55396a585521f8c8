;; One page of memory, no declared maximum (so the runtime's limit applies).
;; grow(pages) -> the memory.grow result: the old size in pages, or -1 when
;; the growth would pass the limit.
;; grow_or_trap(pages) -> the same, but traps (unreachable) on -1, the way
;; most languages turn a failed allocation into an abort.
(module
  (memory (export "memory") 1)
  (func (export "grow") (param $pages i32) (result i32)
    (memory.grow (local.get $pages)))
  (func (export "grow_or_trap") (param $pages i32) (result i32)
    (local $old i32)
    (local.set $old (memory.grow (local.get $pages)))
    (if (i32.eq (local.get $old) (i32.const -1))
      (then unreachable))
    (local.get $old)))
