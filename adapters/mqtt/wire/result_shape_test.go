package wire_test

import (
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// TestDecodeResult_ErrorShapes: a failed task's result decodes as failed
// whether results is "" (Propeller's Rust proplet, and jetprop's proplet
// since it sends that shape) or null (jetprop's proplet before, and
// result_error.json).
func TestDecodeResult_ErrorShapes(t *testing.T) {
	for _, raw := range []string{
		`{"task_id":"t1","proplet_id":"p1","results":"","error":"wasm trap: unreachable"}`,
		`{"task_id":"t1","proplet_id":"p1","results":null,"error":"wasm trap: unreachable"}`,
	} {
		r, err := wire.DecodeResult([]byte(raw))
		if err != nil || !r.Failed() || r.Error != "wasm trap: unreachable" || r.Text() != "" {
			t.Fatalf("%s: %+v %v", raw, r, err)
		}
	}
}
