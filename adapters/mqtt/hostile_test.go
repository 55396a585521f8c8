package mqtt_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// hostileCase is one device message (sent Copies times, 1 when 0) and
// what Inbound must do with it: the outcome of every copy ("recorded", or
// the reason it was ignored for), a substring of the line it logs, and the
// events the device's aggregate must end with (none: nothing changed).
type hostileCase struct {
	name    string
	kind    string // a shared suffix: wire.SuffixCreate, ...
	shared  bool   // on Propeller's shared topic (the payload names the device)
	payload string
	copies  int
	want    map[string]uint64 // outcome → copies
	wantLog string            // "" when nothing is logged
	events  []string          // the device's event types afterwards
	task    bool              // the device has a task "hostile-t" scheduled, whose result this is
	anon    bool              // the topic names no device Inbound knows of, so drops count for ""
}

// pad returns a JSON string of n bytes, quotes included.
func pad(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }

// sized returns the payload {"proplet_id":"hostile",<field>:<string>...}
// padded to n bytes exactly by the string field.
func sized(field string, n int, rest string) string {
	head := `{"proplet_id":"hostile"` + rest + `,"` + field + `":`
	return head + pad(n-len(head)-1) + "}"
}

// Device-protocol rows of the bad-input regression suite (issue 12,
// criteria 1 and 6): each is self-contained.
var hostileCases = []hostileCase{
	{name: "discovery of 900 KB (within the broker's max payload) is dropped unread",
		kind: wire.SuffixCreate, payload: sized("description", 900<<10, ""),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "control/proplet/create of 921600 bytes (max 16384)"},
	{name: "discovery one byte over its bound",
		kind: wire.SuffixCreate, payload: sized("x", wire.MaxDiscoverySize+1, ""),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "(max 16384)"},
	{name: "discovery with a description over its bound",
		kind: wire.SuffixCreate, payload: `{"proplet_id":"hostile","metadata":{"description":` + pad(domain.MaxMetadataDescription+3) + `}}`,
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "description of 1025 bytes (max 1024)"},
	{name: "discovery with a hostname over its bound",
		kind: wire.SuffixCreate, payload: `{"proplet_id":"hostile","metadata":{"hostname":` + pad(domain.MaxMetadataField+3) + `}}`,
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "hostname of 257 bytes (max 256)"},
	{name: "discovery with too many tags",
		kind: wire.SuffixCreate, payload: `{"proplet_id":"hostile","metadata":{"tags":[` + strings.TrimSuffix(strings.Repeat(`"t",`, domain.MaxMetadataTags+1), ",") + `]}}`,
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "33 tags (max 32)"},
	{name: "discovery with a tag over its bound, on the shared topic",
		kind: wire.SuffixCreate, shared: true, payload: `{"proplet_id":"hostile","metadata":{"tags":[` + pad(domain.MaxMetadataTag+3) + `]}}`,
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "tag 0 of 65 bytes (max 64)"},
	{name: "discovery at every metadata bound is recorded",
		kind: wire.SuffixCreate, payload: boundedDiscovery(),
		want: map[string]uint64{"recorded": 1}, events: []string{"device.announced"}},
	{name: "heartbeat over its bound",
		kind: wire.SuffixAlive, payload: sized("reason", wire.MaxAliveSize+1, `,"status":"unreachable"`),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "control/proplet/alive of 4097 bytes (max 4096)"},
	{name: "heartbeat at its bound is recorded",
		kind: wire.SuffixAlive, payload: sized("namespace", wire.MaxAliveSize, `,"status":"alive"`),
		want: map[string]uint64{"recorded": 1}, events: []string{"device.alive"}},
	{name: "accept over its bound",
		kind: wire.SuffixAccepted, payload: sized("task_id", wire.MaxAcceptedSize+1, `,"attempt":1`),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "control/proplet/accepted of 1025 bytes (max 1024)"},
	{name: "result over its bound",
		kind: wire.SuffixResults, payload: sized("results", wire.MaxResultSize+1, `,"task_id":"hostile-t","attempt":1`), task: true,
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "control/proplet/results of 786433 bytes (max 786432)"},
	{name: "result at its bound is recorded (its event fits the max payload)",
		kind: wire.SuffixResults, payload: sized("results", wire.MaxResultSize, `,"task_id":"hostile-t","attempt":1`), task: true,
		want: map[string]uint64{"recorded": 1}},
	{name: "invoke result over its bound",
		kind: wire.SuffixInvokeResults, payload: sized("results", wire.MaxResultSize+1, ""),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "invoke_results of 786433 bytes"},
	{name: "metrics over their bound",
		kind: wire.SuffixMetrics, payload: sized("namespace", wire.MaxMetricsSize+1, ""),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "control/proplet/metrics of 65537 bytes (max 65536)"},
	{name: "task metrics over their bound",
		kind: wire.SuffixTaskMetrics, payload: sized("task_id", wire.MaxMetricsSize+1, ""),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "control/proplet/task_metrics of 65537 bytes"},
	{name: "module request over its bound",
		kind: wire.SuffixModuleRequest, payload: sized("app_name", wire.MaxModuleRequestSize+1, ""),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "registry/proplet of 524289 bytes (max 524288)"},
	{name: "a topic nobody handles, over the bound of others",
		kind: "control/proplet/hostile/nosuch", payload: sized("x", wire.MaxOtherSize+1, ""),
		want: map[string]uint64{mqtt.IgnoredTooLarge: 1}, wantLog: "of 4097 bytes (max 4096)", anon: true},
	{name: "a topic nobody handles",
		kind: "control/proplet/hostile/nosuch", payload: `{}`,
		want: map[string]uint64{mqtt.IgnoredUnhandled: 1}, wantLog: "not handled"},
	{name: "heartbeat that is not JSON",
		kind: wire.SuffixAlive, payload: `{"proplet_id":`,
		want: map[string]uint64{"malformed": 1}, wantLog: "malformed device message"},
	{name: "heartbeat naming another device on its own topic",
		kind: wire.SuffixAlive, payload: `{"proplet_id":"other","status":"alive"}`,
		want: map[string]uint64{"malformed": 1}, wantLog: `proplet_id \"other\" on the topics of \"hostile\"`},
	{name: "heartbeats past the liveness burst are rate limited",
		kind: wire.SuffixAlive, payload: `{"proplet_id":"hostile","status":"alive"}`, copies: mqtt.DefaultLivenessBurst + 10,
		want:    map[string]uint64{"recorded": mqtt.DefaultLivenessBurst, mqtt.IgnoredRateLimited: 10},
		wantLog: "over the device's rate limit", events: []string{"device.alive"}},
	{name: "heartbeats on the shared topic past the burst are limited by the id they name",
		kind: wire.SuffixAlive, shared: true, payload: `{"proplet_id":"hostile","status":"alive"}`, copies: mqtt.DefaultLivenessBurst + 5,
		want:    map[string]uint64{"recorded": mqtt.DefaultLivenessBurst, mqtt.IgnoredRateLimited: 5},
		wantLog: "over the device's rate limit", events: []string{"device.alive"}},
	{name: "metrics past the work burst are rate limited",
		kind: wire.SuffixMetrics, payload: `{"proplet_id":"hostile"}`, copies: mqtt.DefaultWorkBurst + 20,
		want:    map[string]uint64{"recorded": mqtt.DefaultWorkBurst, mqtt.IgnoredRateLimited: 20},
		wantLog: "over the device's rate limit"},
}

// boundedDiscovery is a discovery with every metadata field at its bound.
func boundedDiscovery() string {
	md := domain.DeviceMetadata{
		Description: strings.Repeat("d", domain.MaxMetadataDescription),
		Tags:        make([]string, domain.MaxMetadataTags),
	}
	for _, p := range []*string{&md.Location, &md.IP, &md.Environment, &md.OS, &md.Hostname, &md.CPUArch, &md.PropletVersion, &md.WasmRuntime} {
		*p = strings.Repeat("f", domain.MaxMetadataField)
	}
	for i := range md.Tags {
		md.Tags[i] = strings.Repeat("t", domain.MaxMetadataTag)
	}
	b, _ := json.Marshal(map[string]any{"proplet_id": "hostile", "metadata": md})
	return string(b)
}

// TestInbound_Hostile runs each hostile device message through Inbound on
// a real server with the real handler, the default limits but a rate too
// slow to refill during the test (so the bursts decide).
func TestInbound_Hostile(t *testing.T) {
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) { runHostile(t, tc) })
	}
}

func runHostile(t *testing.T, tc hostileCase) {
	var logs syncBuffer
	slow := func(burst int) mqtt.RateLimit { return mqtt.RateLimit{Rate: 1e-6, Burst: burst} }
	rig := newEdgeRig(t, mqtt.InboundConfig{})
	in, err := mqtt.NewInbound(t.Context(), mqtt.InboundPorts{JetStream: rig.js, Commands: rig.handler, Seer: rig.live, Refusals: rig.handler},
		mqtt.InboundConfig{Topics: edgeTopics, Replicas: 1, WorkLimit: slow(mqtt.DefaultWorkBurst), LivenessLimit: slow(mqtt.DefaultLivenessBurst)},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rig.in = in
	if tc.task {
		rig.scheduleTasks(t, []string{"hostile-t"}, func(int) string { return "hostile" })
	}
	suffix := tc.kind
	if !tc.shared {
		suffix = wire.OwnTopic(tc.kind, "hostile")
	}
	msgs := make([]edgeMsg, max(tc.copies, 1))
	for i := range msgs {
		msgs[i] = edgeMsg{topic: edgeTopics.Topic(suffix), data: []byte(tc.payload)}
	}
	rig.publish(t, msgs)
	rig.run(t)
	rig.checkSettled(t, uint64(len(msgs)))

	s := in.Stats()
	got := map[string]uint64{"recorded": s.Recorded, "malformed": s.Malformed}
	for reason, n := range s.IgnoredBy.ByReason() {
		got[reason] = n
	}
	for outcome, n := range got {
		if n != tc.want[outcome] {
			t.Errorf("%s: %d, want %d (stats %+v)", outcome, n, tc.want[outcome], s)
		}
	}
	if s.Retried != 0 {
		t.Errorf("%d retried", s.Retried)
	}
	if tc.wantLog != "" && !strings.Contains(logs.String(), tc.wantLog) {
		t.Errorf("log does not say %q:\n%s", tc.wantLog, logs.String())
	}
	device := "hostile"
	if tc.anon {
		device = ""
	}
	checkDrops(t, in, device, tc.want)
	checkEvents(t, rig, tc.events)
	if tc.task && tc.want["recorded"] == 0 {
		if task := rig.task(t, "hostile-t"); task.State != engine.TaskScheduled {
			t.Errorf("task is %s, want scheduled still", task.State)
		}
	}
}

// checkDrops: the drops are counted for the device, too.
func checkDrops(t *testing.T, in *mqtt.Inbound, device string, want map[string]uint64) {
	t.Helper()
	large, limited := want[mqtt.IgnoredTooLarge], want[mqtt.IgnoredRateLimited]
	if large+limited == 0 {
		if d := in.Dropped(); len(d) != 0 {
			t.Errorf("dropped by device %+v, want none", d)
		}
		return
	}
	if d := in.Dropped(); len(d) != 1 || d[0] != (mqtt.DeviceDrops{Device: device, TooLarge: large, RateLimited: limited}) {
		t.Errorf("dropped by device %+v, want %q's %d too large and %d rate limited", d, device, large, limited)
	}
}

// checkEvents: the device's aggregate holds the events of these types.
func checkEvents(t *testing.T, rig *edgeRig, want []string) {
	t.Helper()
	envs, err := rig.store.Load(t.Context(), events.DeviceAggregate("hostile"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range envs {
		got = append(got, e.Type)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("device events %v, want %v", got, want)
	}
}

// syncBuffer is a bytes.Buffer the workers may log to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
