package wire_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// TestInvokeRequest_DeployWait: deploy_wait_ms is read within
// 0..MaxDeployWait, whatever a manager sends.
func TestInvokeRequest_DeployWait(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want time.Duration
	}{
		{0, 0}, {-5, 0}, {250, 250 * time.Millisecond},
		{wire.MaxDeployWait.Milliseconds() + 1, wire.MaxDeployWait}, {math.MaxInt64, wire.MaxDeployWait},
	} {
		r, err := wire.DecodeInvoke(fmt.Appendf(nil, `{"id":"t","invocation_id":"i","deploy_wait_ms":%d}`, tc.ms))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.DeployWait(); got != tc.want {
			t.Errorf("deploy_wait_ms %d: %v, want %v", tc.ms, got, tc.want)
		}
	}
}
