;; Float params: mul(f64, f64) -> f64 and mul32(f32, f32) -> f32.
(module
  (func (export "mul") (param $a f64) (param $b f64) (result f64)
    (f64.mul (local.get $a) (local.get $b)))
  (func (export "mul32") (param $a f32) (param $b f32) (result f32)
    (f32.mul (local.get $a) (local.get $b))))
