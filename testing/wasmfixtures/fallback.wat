;; No export named after a task: runtimes fall back to main, then run.
;; main() -> 1 and run() -> 2 tell which one was called.
(module
  (func (export "main") (result i32) (i32.const 1))
  (func (export "run") (result i32) (i32.const 2)))
