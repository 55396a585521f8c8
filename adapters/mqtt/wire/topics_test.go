package wire_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

var topics = wire.Topics{Tenant: "4f2a", Channel: "c-77"}

func TestTopics_Topic(t *testing.T) {
	tests := []struct {
		suffix, want string
	}{
		{wire.SuffixStart, "m/4f2a/c/c-77/control/manager/start"},
		{wire.SuffixStop, "m/4f2a/c/c-77/control/manager/stop"},
		{wire.SuffixInvoke, "m/4f2a/c/c-77/control/manager/invoke"},
		{wire.SuffixCreate, "m/4f2a/c/c-77/control/proplet/create"},
		{wire.SuffixAlive, "m/4f2a/c/c-77/control/proplet/alive"},
		{wire.SuffixResults, "m/4f2a/c/c-77/control/proplet/results"},
		{wire.SuffixInvokeResults, "m/4f2a/c/c-77/control/proplet/invoke_results"},
		{wire.SuffixTaskMetrics, "m/4f2a/c/c-77/control/proplet/task_metrics"},
		{wire.SuffixMetrics, "m/4f2a/c/c-77/control/proplet/metrics"},
		{wire.SuffixModuleRequest, "m/4f2a/c/c-77/registry/proplet"},
		{wire.SuffixChunk, "m/4f2a/c/c-77/registry/server"},
	}
	for _, tc := range tests {
		t.Run(tc.suffix, func(t *testing.T) {
			got := topics.Topic(tc.suffix)
			if got != tc.want {
				t.Fatalf("Topic = %q, want %q", got, tc.want)
			}
			suffix, err := topics.Suffix(got)
			if err != nil || suffix != tc.suffix {
				t.Fatalf("Suffix(%q) = %q, %v", got, suffix, err)
			}
			parsed, suffix, err := wire.ParseTopic(got)
			if err != nil || parsed != topics || suffix != tc.suffix {
				t.Fatalf("ParseTopic(%q) = %+v, %q, %v", got, parsed, suffix, err)
			}
		})
	}
}

func TestTopics_Suffix(t *testing.T) {
	tests := []struct {
		name, topic, want string
		wantErr           error
	}{
		{name: "ours", topic: "m/4f2a/c/c-77/registry/server", want: "registry/server"},
		{name: "other channel", topic: "m/4f2a/c/c-78/registry/server", wantErr: wire.ErrBadTopic},
		{name: "channel with our channel as prefix", topic: "m/4f2a/c/c-777/registry/server", wantErr: wire.ErrBadTopic},
		{name: "other tenant", topic: "m/4f2b/c/c-77/registry/server", wantErr: wire.ErrBadTopic},
		{name: "prefix only", topic: "m/4f2a/c/c-77", wantErr: wire.ErrBadTopic},
		{name: "empty", topic: "", wantErr: wire.ErrBadTopic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := topics.Suffix(tc.topic)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) || got != tc.want {
				t.Fatalf("Suffix(%q) = %q, %v; want %q, %v", tc.topic, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		name, topic string
		want        wire.Topics
		suffix      string
		wantErr     error
	}{
		{name: "start", topic: "m/t/c/ch/control/manager/start", want: wire.Topics{Tenant: "t", Channel: "ch"}, suffix: "control/manager/start"},
		{name: "one level suffix", topic: "m/t/c/ch/x", want: wire.Topics{Tenant: "t", Channel: "ch"}, suffix: "x"},
		{name: "uuids", topic: "m/0f0b7c9e-2d5a/c/3f1c2a4b/registry/proplet", want: wire.Topics{Tenant: "0f0b7c9e-2d5a", Channel: "3f1c2a4b"}, suffix: "registry/proplet"},
		{name: "no suffix", topic: "m/t/c/ch", wantErr: wire.ErrBadTopic},
		{name: "not m", topic: "x/t/c/ch/control/manager/start", wantErr: wire.ErrBadTopic},
		{name: "not c", topic: "m/t/x/ch/control/manager/start", wantErr: wire.ErrBadTopic},
		{name: "empty tenant", topic: "m//c/ch/control/manager/start", wantErr: wire.ErrBadTopic},
		{name: "empty channel", topic: "m/t/c//control/manager/start", wantErr: wire.ErrBadTopic},
		{name: "nats subject", topic: "m.t.c.ch.control.manager.start", wantErr: wire.ErrBadTopic},
		{name: "empty", topic: "", wantErr: wire.ErrBadTopic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, suffix, err := wire.ParseTopic(tc.topic)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want || suffix != tc.suffix {
				t.Fatalf("ParseTopic(%q) = %+v, %q; want %+v, %q", tc.topic, got, suffix, tc.want, tc.suffix)
			}
		})
	}
}

func TestTopics_Validate(t *testing.T) {
	tests := []struct {
		name    string
		topics  wire.Topics
		wantErr bool
	}{
		{"uuids", wire.Topics{Tenant: "0f0b7c9e-2d5a-4a55-9a57-3f1c2a4b5c6d", Channel: "5c3d7a8e-1f2b-4c6d-9e0a-7b8c9d0e1f2a"}, false},
		{"words", wire.Topics{Tenant: "acme", Channel: "fleet_1"}, false},
		{"empty tenant", wire.Topics{Channel: "c"}, true},
		{"empty channel", wire.Topics{Tenant: "t"}, true},
		{"slash", wire.Topics{Tenant: "a/b", Channel: "c"}, true},
		{"plus", wire.Topics{Tenant: "t", Channel: "+"}, true},
		{"hash", wire.Topics{Tenant: "#", Channel: "c"}, true},
		{"dot", wire.Topics{Tenant: "t", Channel: "c.1"}, true},
		{"space", wire.Topics{Tenant: "t 1", Channel: "c"}, true},
		{"tab", wire.Topics{Tenant: "t", Channel: "c\t"}, true},
		{"newline", wire.Topics{Tenant: "t\n", Channel: "c"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.topics.Validate(); (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name, topic, subject string
		back                 bool // Topic(subject) gives topic back
	}{
		{"plain", "m/t/c/ch/control/manager/start", "m.t.c.ch.control.manager.start", true},
		{"dot in a level", "m/t.1/c/ch/x", "m.t//1.c.ch.x", true},
		{"dots at level edges", "a./.b/..", "a//.//b.////", true},
		{"single level", "abc", "abc", true},
		{"plus", "m/+/c/+/control/proplet/alive", "m.*.c.*.control.proplet.alive", false},
		{"hash", "m/t/c/ch/control/proplet/#", "m.t.c.ch.control.proplet.>", false},
		{"edge inbound", "m/+/c/+/control/proplet/#", "m.*.c.*.control.proplet.>", false},
		{"plus inside a level is no wildcard", "a+b/c#d", "a+b.c#d", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire.Subject(tc.topic); got != tc.subject {
				t.Fatalf("Subject(%q) = %q, want %q", tc.topic, got, tc.subject)
			}
			if got := wire.Topic(tc.subject); tc.back && got != tc.topic {
				t.Fatalf("Topic(%q) = %q, want %q", tc.subject, got, tc.topic)
			}
		})
	}
}

func ExampleSubject() {
	tp := wire.Topics{Tenant: "acme", Channel: "fleet.eu"}
	fmt.Println(wire.Subject(tp.Topic(wire.SuffixResults)))
	fmt.Println(wire.Subject("m/+/c/+/control/proplet/#"))
	fmt.Println(wire.Topic("m.acme.c.fleet//eu.registry.proplet"))
	// Output:
	// m.acme.c.fleet//eu.control.proplet.results
	// m.*.c.*.control.proplet.>
	// m/acme/c/fleet.eu/registry/proplet
}

func ExampleDecodeResult() {
	r, err := wire.DecodeResult([]byte(`{"task_id":"t1","proplet_id":"pi-1","results":"42","error":null}`))
	fmt.Println(r.TaskID, r.Text(), r.Failed(), err)
	r, _ = wire.DecodeResult([]byte(`{"task_id":"t1","proplet_id":"pi-1","results":null,"error":"trap"}`))
	fmt.Println(r.Failed(), r.Error)
	_, err = wire.DecodeResult([]byte(`{"results":"42"}`))
	fmt.Println(errors.Is(err, wire.ErrInvalid))
	// Output:
	// t1 42 false <nil>
	// true trap
	// true
}

// A topic made by the Subject mapping comes back from Topic.
func TestSubject_RoundTrip(t *testing.T) {
	for _, topic := range []string{"m/a.b/c/d", "...", "./.", "a//b", "/a", "a/", "x.y.z/w"} {
		if got := wire.Topic(wire.Subject(topic)); got != topic {
			t.Errorf("Topic(Subject(%q)) = %q", topic, got)
		}
		if strings.Contains(wire.Subject(topic), "/") && !strings.Contains(topic, ".") {
			t.Errorf("Subject(%q) = %q keeps a slash", topic, wire.Subject(topic))
		}
	}
}

func TestIsHTTPURL(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"http://example.com/a.wasm", true},
		{"HTTPS://example.com/a.wasm", true},
		{"localhost:5000/demo/add:v1", false},
		{"sha256:0123", false},
		{"vision:1.2", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := wire.IsHTTPURL(tc.ref); got != tc.want {
			t.Errorf("IsHTTPURL(%q) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}

func TestOwnTopics(t *testing.T) {
	tests := []struct{ shared, device, own string }{
		{wire.SuffixResults, "p1", "control/proplet/p1/results"},
		{wire.SuffixCreate, "p1", "control/proplet/p1/create"},
		{wire.SuffixStart, "p-2", "control/manager/p-2/start"},
		{wire.SuffixResultAck, "p1", "control/manager/p1/result_ack"},
		{wire.SuffixModuleRequest, "p1", "registry/proplet/p1"},
		{wire.SuffixChunk, "p1", "registry/server/p1"},
		{wire.SuffixAlive, "results", "control/proplet/results/alive"},
	}
	for _, tc := range tests {
		if got := wire.OwnTopic(tc.shared, tc.device); got != tc.own {
			t.Errorf("OwnTopic(%q, %q) = %q, want %q", tc.shared, tc.device, got, tc.own)
		}
		if shared, device := wire.SplitOwn(tc.own); shared != tc.shared || device != tc.device {
			t.Errorf("SplitOwn(%q) = %q, %q", tc.own, shared, device)
		}
		if shared, device := wire.SplitOwn(tc.shared); shared != tc.shared || device != "" {
			t.Errorf("SplitOwn(%q) = %q, %q: a shared suffix names no device", tc.shared, shared, device)
		}
	}
	for _, s := range []string{"control/proplet/p1/nope", "control/proplet//results", "registry/server/a/b", "fl/rounds/1"} {
		if _, device := wire.SplitOwn(s); device != "" {
			t.Errorf("SplitOwn(%q) names device %q", s, device)
		}
	}
}

func TestTopics_DeviceAccess(t *testing.T) {
	tp := wire.Topics{Tenant: "t", Channel: "c"}
	pub, sub := tp.DeviceAccess("p1", false)
	for _, want := range []string{"m.t.c.c.control.proplet.p1.results", "m.t.c.c.registry.proplet.p1"} {
		if !slices.Contains(pub, want) {
			t.Errorf("pub %v lacks %s", pub, want)
		}
	}
	for _, no := range []string{"m.t.c.c.control.proplet.results", "m.t.c.c.control.manager.p1.start", "m.t.c.c.control.proplet.p2.results", "m.>"} {
		if slices.Contains(pub, no) {
			t.Errorf("pub %v has %s", pub, no)
		}
	}
	for _, want := range []string{"m.t.c.c.control.manager.p1.start", "m.t.c.c.registry.server.p1", "m.t.c.c.control.manager.p1.>"} {
		if !slices.Contains(sub, want) {
			t.Errorf("sub %v lacks %s", sub, want)
		}
	}
	if got := wire.Subject(tp.Topic(wire.OwnTopic(wire.SuffixResultAck, "p1"))); got != "m.t.c.c.control.manager.p1.result_ack" {
		t.Errorf("result acks go on %s, not under control.manager.p1.> (which the device may read)", got)
	}
	if slices.Contains(sub, "m.t.c.c.control.manager.start") {
		t.Errorf("a device that is not legacy reads the shared start topic")
	}
	lpub, lsub := tp.DeviceAccess("p1", true)
	if !slices.Contains(lpub, "m.t.c.c.control.proplet.results") || !slices.Contains(lsub, "m.t.c.c.control.manager.start") || !slices.Contains(lsub, "m.t.c.c.registry.server") {
		t.Errorf("legacy access %v %v lacks the shared topics", lpub, lsub)
	}
	if slices.Contains(lsub, "m.t.c.c.control.manager.result_ack") {
		t.Errorf("result acks go on own topics only, yet a legacy device reads a shared one")
	}
}
