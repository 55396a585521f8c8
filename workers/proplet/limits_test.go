package proplet_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestProplet_HostileLimits: starts that ask for too much, or modules that
// take too much, fail (or are cut) with a reason, and the proplet goes on
// running tasks: each row is followed by an add that must still work.
func TestProplet_HostileLimits(t *testing.T) {
	tests := []struct {
		name      string
		req       wire.StartRequest
		want      string // a prefix of the result
		wantSufix string
		wantErr   string
	}{
		{name: "memory above wasm32", req: wire.StartRequest{Name: "grow", File: wasmfixtures.GrowLoop(), MemoryMiB: 100000},
			wantErr: "memory_mib 100000 is above wasm32's maximum of 4096 MiB"},
		{name: "timeout too large to count", req: wire.StartRequest{Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}, TimeoutMS: 1<<63 - 1},
			wantErr: "timeout_ms 9223372036854775807 is too large to count"},
		{name: "grow page by page to the cap", req: wire.StartRequest{Name: "run", File: wasmfixtures.GrowLoop(), MemoryMiB: 16}, want: "256"},
		{name: "endless recursion", req: wire.StartRequest{Name: "run", File: wasmfixtures.Recurse()}, wantErr: "stack overflow"},
		{name: "stdout flood", req: wire.StartRequest{Name: "_start", File: wasmfixtures.Spew()}, want: "xxxx",
			wantSufix: "\n…[truncated 16252928 bytes]"},
		{name: "stderr flood", req: wire.StartRequest{Name: "stderr", File: wasmfixtures.Spew()}, wantErr: "…[truncated 16252928 bytes]"},
		{name: "escaped output", req: wire.StartRequest{Name: "_start", File: wasmfixtures.Uppercase(), Stdin: []byte(strings.Repeat("<", 600<<10))},
			want: "<<<<", wantSufix: " bytes dropped]"},
	}
	s := natstest.Start(t)
	m := newManager(t, s)
	startProplet(t, testConfig(t, s), m)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.ID = fmt.Sprintf("hostile-%d", i)
			m.start(tc.req)
			r, raw := m.waitResult(tc.req.ID)
			short := raw[:min(len(raw), 300)]
			switch {
			case tc.wantErr != "" && !strings.Contains(string(r.Error), tc.wantErr):
				t.Fatalf("result %s, want an error containing %q", short, tc.wantErr)
			case tc.wantErr == "" && (r.Failed() || !strings.HasPrefix(r.Text(), tc.want) || !strings.HasSuffix(r.Text(), tc.wantSufix)):
				t.Fatalf("result %s...%s, want %q...%q", short, raw[max(len(raw)-100, 0):], tc.want, tc.wantSufix)
			}
			after := wire.StartRequest{ID: tc.req.ID + "-after", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"2", "3"}}
			m.start(after)
			if r, raw := m.waitResult(after.ID); r.Failed() || r.Text() != "5" {
				t.Fatalf("the proplet no longer runs tasks: %s", raw)
			}
		})
	}
}
