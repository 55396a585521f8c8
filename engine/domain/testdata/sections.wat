;; Every section and every element and data segment form CheckModule walks
;; (wazero with its default features compiles it): imports of each kind,
;; several function types (multi-value results), tables, a memory, globals
;; with each kind of constant, exports, a start function, element segments
;; in all 8 forms, declared locals, active and passive data segments, a
;; data count section and a "name" section with module, function and local
;; names. Rebuild: wat2wasm --debug-names sections.wat -o sections.wasm
(module $sections
  (type $binop (func (param i32 i32) (result i32)))
  (type $pair (func (param i64) (result i32 i64)))
  (type $none (func))
  (import "env" "f" (func $imported (type $binop)))
  (import "env" "t" (table 1 funcref))
  (import "env" "g" (global $ig i32))
  (import "env" "m" (memory 1 2))
  (table $t2 2 10 funcref)
  (table $t3 3 externref)
  (global $gi (mut i32) (i32.const -5))
  (global $gl i64 (i64.const 1234567890123))
  (global $gf f32 (f32.const 1.5))
  (global $gd f64 (f64.const 2.5))
  (global $gg i32 (global.get $ig))
  (global $gr funcref (ref.func $add))
  (global $gn externref (ref.null extern))
  (global $gv v128 (v128.const i32x4 1 2 3 4))
  (func $add (export "add") (type $binop) (local $tmp i32) (local i64 i64 f32)
    local.get 0
    local.get 1
    i32.add
    local.tee $tmp)
  (func $split (type $pair) (local f64)
    i32.const 1
    local.get 0)
  (func $start (type $none)
    i32.const 0
    i32.const 0
    i32.const 0
    memory.init $passive
    data.drop $passive)
  (start $start)
  (export "mem" (memory 0))
  (export "g" (global $gi))
  (export "t" (table $t2))
  (elem (i32.const 0) $add)                                   ;; 0
  (elem func $split)                                          ;; 1
  (elem (table $t2) (i32.const 0) func $add $split)           ;; 2
  (elem declare func $start)                                  ;; 3
  (elem (i32.const 0) funcref (ref.func $add))                ;; 4
  (elem funcref (ref.null func) (ref.func $split))            ;; 5
  (elem (table $t3) (i32.const 0) externref (ref.null extern)) ;; 6
  (elem declare funcref (ref.func $add))                      ;; 7
  (data (i32.const 16) "active")
  (data (memory 0) (i32.const 32) "active, memory 0")
  (data $passive "passive"))
