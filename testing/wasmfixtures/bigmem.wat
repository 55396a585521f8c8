;; Declares a minimum of 64 pages (4 MiB): refused under a smaller memory limit.
;; run() -> the memory size in pages.
(module
  (memory (export "memory") 64)
  (func (export "run") (result i32) (memory.size)))
