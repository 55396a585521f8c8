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
// cut with a marker to fit; one at the bound is sent as it is.
func TestResult_TooLarge(t *testing.T) {
	p := &Proplet{id: "p1"}
	for _, tc := range []struct {
		name string
		out  string
		cut  bool
	}{
		{"at the bound", strings.Repeat("x", MaxResultBytes-2), false}, // its JSON string is 2 more
		{"one byte over", strings.Repeat("x", MaxResultBytes-1), true},
		{"a megabyte", strings.Repeat("x", 1<<20), true},
		{"escaping makes it six times larger", strings.Repeat("<", 512<<10), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := p.result("t1", 1, tc.out, nil)
			b, err := json.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Error != nil {
				t.Fatalf("failed: %s", *msg.Error)
			}
			var got string
			if err := json.Unmarshal(msg.Results, &got); err != nil {
				t.Fatal(err)
			}
			if cut := got != tc.out; cut != tc.cut {
				t.Fatalf("cut %v, want %v", cut, tc.cut)
			}
			if tc.cut && !strings.Contains(got, "bytes dropped]") {
				t.Errorf("a cut result without the marker: ...%q", got[max(len(got)-80, 0):])
			}
			if err := wire.CheckSize(wire.SuffixResults, b); err != nil {
				t.Errorf("the engine would drop it: %v", err)
			}
		})
	}
}
