package proplet

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

func TestDecodeStart(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantID  string
		wantErr error
	}{
		{name: "propeller start", in: `{"id":"t1","name":"add","file":"AGFzbQ==","inputs":[10,"20"],"cli_args":null,"daemon":false,"state":1}`, wantID: "t1"},
		{name: "no module is not a decode error", in: `{"id":"t2","name":"add"}`, wantID: "t2"},
		{name: "no id", in: `{"name":"add"}`, wantErr: wire.ErrInvalid},
		{name: "not json", in: `{`, wantErr: wire.ErrInvalid},
		{name: "bad base64", in: `{"id":"t3","file":"%%%"}`, wantErr: wire.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := decodeStart([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err == nil && req.ID != tc.wantID {
				t.Fatalf("id %q", req.ID)
			}
		})
	}
}

func FuzzDecodeStart(f *testing.F) {
	f.Add([]byte(`{"id":"t1","name":"add","file":"AGFzbQ==","inputs":[10,"20"],"attempt":2,"timeout_ms":5,"memory_mib":1,"stdin":"aGk="}`))
	f.Add([]byte(`{"id":"","name":"x"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeStart(b)
		if err == nil && req.ID == "" {
			t.Fatal("accepted a start without id")
		}
	})
}

// TestResult_TooLarge: an output the engine would drop as too large is
// sent as a failure saying so; one at the bound is sent as it is.
func TestResult_TooLarge(t *testing.T) {
	p := &Proplet{id: "p1"}
	for _, tc := range []struct {
		name string
		n    int // bytes of output (its JSON string is 2 more)
		fail bool
	}{
		{"at the bound", maxResult - 2, false},
		{"one byte over", maxResult - 1, true},
		{"a megabyte", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := p.result("t1", 1, strings.Repeat("x", tc.n), nil)
			b, err := json.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			if failed := msg.Error != nil; failed != tc.fail {
				t.Fatalf("failed %v, want %v", failed, tc.fail)
			}
			if tc.fail && !strings.Contains(*msg.Error, "result too large") {
				t.Errorf("error %q does not say why", *msg.Error)
			}
			if err := wire.CheckSize(wire.SuffixResults, b); err != nil {
				t.Errorf("the engine would drop it: %v", err)
			}
		})
	}
}
