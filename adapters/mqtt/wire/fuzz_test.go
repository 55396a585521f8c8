package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// seed adds every golden payload and the extra inputs to f's corpus.
func seed(f *testing.F, extra ...string) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files: %v", err)
	}
	for _, name := range files {
		f.Add(readGolden(f, filepath.Base(name)))
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// fuzzDecoder checks that decode never panics, fails only with ErrInvalid,
// and that what it accepts re-encodes to JSON it accepts again and encodes
// the same way (encoding is a fixed point after one round).
func fuzzDecoder(t *testing.T, decode decoder, in []byte) any {
	v, err := decode(in)
	if err != nil {
		if !errors.Is(err, wire.ErrInvalid) {
			t.Fatalf("decode(%q): error %v is not ErrInvalid", in, err)
		}
		return nil
	}
	b1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %#v (from %q): %v", v, in, err)
	}
	v2, err := decode(b1)
	if err != nil {
		t.Fatalf("decode of re-encoded %s (from %q): %v", b1, in, err)
	}
	b2, err := json.Marshal(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("re-encoding of %q is not stable:\n%s\n%s", in, b1, b2)
	}
	return v2
}

func FuzzDecodeStart(f *testing.F) {
	seed(f, `{"id":"t","name":"f","file":"AA==","inputs":[1,"2",true,-0.5e-3]}`,
		`{"id":"t","name":"f","image_url":"x","env":{},"parent_results":null,"inputs":[]}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v := fuzzDecoder(t, decStart, in); v != nil {
			s := v.(wire.StartRequest)
			if s.Validate() != nil {
				t.Fatalf("an accepted start fails Validate: %#v", s)
			}
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	seed(f, `{"task_id":"t","results":{ "a" : [1, 2] },"error":{"x":"<y>"}}`, `{"task_id":"t","error":5}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		first, err := wire.DecodeResult(in)
		if v := fuzzDecoder(t, decResult, in); v != nil {
			again := v.(wire.Result)
			if err != nil || again.Failed() != first.Failed() || again.TaskID != first.TaskID {
				t.Fatalf("re-decoded %#v, first %#v", again, first)
			}
		}
	})
}

func FuzzDecodeResultAck(f *testing.F) {
	seed(f, `{"task_id":"t","attempt":1}`, `{"task_id":"t","attempt":0}`, `{"attempt":2}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v := fuzzDecoder(t, decResultAck, in); v != nil {
			if a := v.(wire.ResultAck); a.TaskID == "" || a.Attempt <= 0 {
				t.Fatalf("an accepted result ack lacks a field: %#v", a)
			}
		}
	})
}

func FuzzDecodeAlive(f *testing.F) {
	seed(f, `{"proplet_id":"p","status":"offline"}`, `{"proplet_id":"","status":"alive"}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v := fuzzDecoder(t, decAlive, in); v != nil {
			a := v.(wire.Alive)
			if a.PropletID == "" || a.Status != wire.StatusAlive && a.Status != wire.StatusOffline {
				t.Fatalf("accepted %#v", a)
			}
		}
	})
}

func FuzzDecodeDiscovery(f *testing.F) {
	seed(f, `{"proplet_id":"p","metadata":{"total_memory_bytes":"1e3","tags":[]}}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzDecoder(t, decDiscovery, in)
	})
}

func FuzzDecodeChunk(f *testing.F) {
	seed(f, `{"app_name":"a","chunk_idx":"0","total_chunks":1.0,"data":""}`,
		`{"app_name":"a","chunk_idx":9223372036854775807,"total_chunks":-9223372036854775808}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v := fuzzDecoder(t, decChunk, in); v != nil {
			c := v.(wire.Chunk)
			if c.ChunkIdx < 0 || c.ChunkIdx >= c.TotalChunks || c.AppName == "" {
				t.Fatalf("accepted %#v", c)
			}
		}
	})
}

func FuzzDecodeMetrics(f *testing.F) {
	seed(f, `{"timestamp":{"secs_since_epoch":-1,"nanos_since_epoch":-1}}`, `{"timestamp":"0000-01-01T00:00:00+01:00"}`,
		`{"timestamp":"1e3"}`, `{"timestamp":null,"metrics":{ "a" : 1 }}`,
		`{"cpu_metrics":{"percent":"x"}}`, `{"memory_metrics":{"rss_bytes":1.5,"container_limit_bytes":null}}`, `{"aggregated":{"sample_count":"7"}}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzDecoder(t, decTaskMetrics, in)
		fuzzDecoder(t, decPropletMetrics, in)
	})
}

func FuzzStrings(f *testing.F) {
	for _, s := range []string{`["a",1,true]`, `null`, `[]`, `[1e400]`, `[-0]`, `["\ud800"]`, `[0.1e-2, "x"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s wire.Strings
		if json.Unmarshal(in, &s) != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back wire.Strings
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decode of re-encoded %s: %v", b, err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("%q decoded to %#v, through %s to %#v", in, s, b, back)
		}
	})
}

func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{
		`"2026-11-21T12:00:00.123456789Z"`, `"2026-11-21T13:00:00+01:00"`, `{"secs_since_epoch":1795262400,"nanos_since_epoch":123456789}`,
		`987654`, `"1"`, `null`, `{"secs_since_epoch":0}`, `"0001-01-01T00:00:00Z"`, `-5`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var ts wire.Timestamp
		if json.Unmarshal(in, &ts) != nil {
			return
		}
		b, err := json.Marshal(ts)
		if err != nil {
			t.Fatal(err)
		}
		var back wire.Timestamp
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q decoded to %+v; its encoding %s does not decode: %v", in, ts, b, err)
		}
		if !back.Time.Equal(ts.Time) || ts.Time.IsZero() && back.UptimeMS != ts.UptimeMS {
			t.Fatalf("%q decoded to %+v, through %s to %+v", in, ts, b, back)
		}
	})
}

// Topic(Subject(t)) is t for every topic an MQTT client may publish to (no
// wildcard levels, no NUL, which nats-server refuses anyway).
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"m/t/c/ch/control/proplet/results", "a./.b", "..//..", "/", "x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if strings.ContainsRune(topic, 0) {
			return
		}
		for _, l := range strings.Split(topic, "/") {
			if l == "+" || l == "#" {
				return
			}
		}
		if got := wire.Topic(wire.Subject(topic)); got != topic {
			t.Fatalf("Topic(Subject(%q)) = %q via %q", topic, got, wire.Subject(topic))
		}
	})
}

// The decoders of the device messages the engine reads that had no fuzz
// target of their own (issue 12): stops (proplets), accepts and module
// requests (the engine).

func FuzzDecodeStop(f *testing.F) {
	seed(f, `{"id":"t"}`, `{"id":""}`, `{"id":5}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v := fuzzDecoder(t, decStop, in); v != nil && v.(wire.StopRequest).ID == "" {
			t.Fatalf("accepted a stop without id: %q", in)
		}
	})
}

func FuzzDecodeAccepted(f *testing.F) {
	seed(f, `{"task_id":"t","attempt":1}`, `{"task_id":"t","attempt":-1,"proplet_id":"p"}`, `{"attempt":1e3}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v := fuzzDecoder(t, dec(wire.DecodeAccepted), in); v != nil {
			if a := v.(wire.Accepted); a.TaskID == "" || a.Attempt <= 0 {
				t.Fatalf("an accepted accept lacks a field: %#v", a)
			}
		}
	})
}

func FuzzDecodeModuleRequest(f *testing.F) {
	seed(f, `{"app_name":"a","proplet_id":"p"}`, `{"app_name":""}`, `{"app_name":"a/../b"}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v := fuzzDecoder(t, dec(wire.DecodeModuleRequest), in); v != nil {
			r := v.(wire.ModuleRequest)
			if err := r.Validate(); err != nil {
				t.Fatalf("an accepted module request fails Validate: %v", err)
			}
		}
	})
}
