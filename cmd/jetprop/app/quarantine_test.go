package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// outsider is a plain NATS client of the app's server, writing into the
// event streams what no jetprop writer would.
func outsider(t *testing.T, a *app.App) jetstream.JetStream {
	t.Helper()
	// Only the engine may write the event streams: the bad messages come
	// through its own connection, as a bug or an operator's mistake would.
	js, err := jetstream.New(a.Conn())
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// envelopeHeaders are the headers of a well-formed event of type typ.
func envelopeHeaders(typ string) nats.Header {
	return nats.Header{
		events.HeaderType: {typ}, events.HeaderTime: {time.Now().UTC().Format(time.RFC3339Nano)},
		events.HeaderVersion: {"1"}, "Nats-Msg-Id": {"outsider-" + typ + "-" + fmt.Sprint(time.Now().UnixNano())},
	}
}

// badMessage is one message an outsider stores.
type badMessage struct {
	name    string
	agg     events.Aggregate
	headers nats.Header // nil: not an envelope at all
	data    string
	seq     uint64 // once stored
}

func (m *badMessage) store(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	msg := nats.NewMsg(m.agg.Subject())
	msg.Header, msg.Data = m.headers, []byte(m.data)
	ack, err := js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	m.seq = ack.Sequence
}

// wantRefused checks a 409 that names the message that stops agg.
func wantRefused(t *testing.T, body []byte, m badMessage) {
	t.Helper()
	var e httpapi.Error
	mustJSON(t, body, &e)
	if e.Quarantined == nil || e.Quarantined.Seq != m.seq || e.Quarantined.Aggregate != m.agg ||
		!strings.Contains(e.Error, m.agg.String()+" is quarantined") || !strings.Contains(e.Error, "jetprop events doctor") {
		t.Fatalf("%s: error %s", m.name, body)
	}
}

// TestApp_BadStoredEvents stores, in TASKS, WORKFLOWS and DEVICES,
// messages that are not events and well-formed events that do not decode,
// some on aggregates that exist. The running server goes on; restarted on
// the same data it starts, serves everything else, answers 409 for the
// quarantined aggregates, reports degraded health and lists them.
func TestApp_BadStoredEvents(t *testing.T) {
	cfg := testConfig(t.TempDir(), 1)
	a := startApp(t, cfg)
	waitDevices(t, a, 1)
	done := runHTTP(t, a, map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{1, 2}})
	var pending apiTask
	mustJSON(t, call(t, "POST", a.HTTPURL()+"/tasks", map[string]any{"name": "add", "image_url": "docker.io/acme/add:1"}, 201), &pending)
	var job struct {
		JobID string `json:"job_id"`
	}
	mustJSON(t, call(t, "POST", a.HTTPURL()+"/jobs", map[string]any{"name": "held",
		"tasks": []map[string]any{{"name": "add", "image_url": "docker.io/acme/add:1"}}}, 201), &job)
	if _, err := a.Handler().Device(t.Context(), engine.Announce{ID: "dev2"}); err != nil {
		t.Fatal(err)
	}

	bad := []*badMessage{
		{name: "task: no envelope", agg: events.TaskAggregate("x"), data: "{}"},
		{name: "task: body that does not decode", agg: events.TaskAggregate(pending.ID), headers: envelopeHeaders("task.scheduled"), data: `{"attempt":"two"}`},
		{name: "workflow: bad time", agg: events.WorkflowAggregate("wx"), headers: nats.Header{events.HeaderType: {"workflow.created"}, "Nats-Msg-Id": {"m1"}, events.HeaderTime: {"soon"}}, data: "\x00\x01"},
		{name: "workflow: unknown type", agg: events.WorkflowAggregate(job.JobID), headers: envelopeHeaders("workflow.teleported"), data: `{}`},
		{name: "device: no envelope", agg: events.DeviceAggregate("devx"), data: ""},
		{name: "device: body that is not JSON", agg: events.DeviceAggregate("dev2"), headers: envelopeHeaders("device.alive"), data: `{"`},
	}
	js := outsider(t, a)
	for _, m := range bad {
		m.store(t, js)
	}
	natstest.CheckFor(t, 20*time.Second, func() error {
		if n := a.Quarantine().Len(); n != len(bad) {
			return fmt.Errorf("%d aggregates quarantined, want %d", n, len(bad))
		}
		return nil
	})
	select {
	case <-a.Failed():
		t.Fatalf("the running server failed: %v", a.Err())
	default:
	}
	a.Close()

	b := startApp(t, cfg)
	base := b.HTTPURL()
	t.Run("health is degraded", func(t *testing.T) {
		var h httpapi.Health
		mustJSON(t, call(t, "GET", base+"/health", nil, 200), &h)
		if h.Status != httpapi.HealthDegraded || h.Quarantined != len(bad) || len(h.Streams) != 0 {
			t.Fatalf("health %+v", h)
		}
	})
	t.Run("the quarantine lists every message", func(t *testing.T) {
		r, err := client.New(base, nil).Quarantine(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got := map[events.Aggregate]uint64{}
		for _, q := range r.Quarantined {
			got[q.Aggregate] = q.Seq
		}
		for _, m := range bad {
			if got[m.agg] != m.seq {
				t.Errorf("%s: listed at %d, want %d (%+v)", m.name, got[m.agg], m.seq, r.Quarantined)
			}
		}
	})
	t.Run("commands to them are refused with 409", func(t *testing.T) {
		wantRefused(t, call(t, "POST", base+"/tasks/x/start", nil, http.StatusConflict), *bad[0])
		wantRefused(t, call(t, "POST", base+"/tasks/"+pending.ID+"/start", nil, http.StatusConflict), *bad[1])
		wantRefused(t, call(t, "POST", base+"/workflows/wx/cancel", nil, http.StatusConflict), *bad[2])
		wantRefused(t, call(t, "POST", base+"/workflows/"+job.JobID+"/cancel", nil, http.StatusConflict), *bad[3])
		wantRefused(t, call(t, "GET", base+"/proplets/devx", nil, http.StatusConflict), *bad[4])
		if _, err := b.Handler().Device(t.Context(), engine.Heartbeat{ID: "dev2"}); !errors.Is(err, domain.ErrQuarantined) {
			t.Fatalf("heartbeat of dev2: %v", err)
		}
	})
	t.Run("they show their last good state, marked", func(t *testing.T) {
		var task httpapi.Task
		mustJSON(t, call(t, "GET", base+"/tasks/"+pending.ID, nil, 200), &task)
		var wf httpapi.Workflow
		mustJSON(t, call(t, "GET", base+"/workflows/"+job.JobID, nil, 200), &wf)
		var dev httpapi.Proplet
		mustJSON(t, call(t, "GET", base+"/proplets/dev2", nil, 200), &dev)
		if task.Status != "pending" || task.Quarantined == nil || wf.State != engine.WorkflowRunning || !wf.Held || wf.Quarantined == nil || dev.Quarantined == nil {
			t.Fatalf("task %s %v, workflow %s %v, proplet %v", task.Status, task.Quarantined, wf.State, wf.Quarantined, dev.Quarantined)
		}
	})
	t.Run("everything else is served", func(t *testing.T) {
		var old httpapi.Task
		mustJSON(t, call(t, "GET", base+"/tasks/"+done.ID, nil, 200), &old)
		if old.Status != "completed" || old.Quarantined != nil {
			t.Fatalf("the task done before: %s %v", old.Status, old.Quarantined)
		}
		// dev2 shows up in its last good state, but is quarantined: wait
		// until the local proplet may take the task. It may be marked
		// offline a moment after the restart (its goodbye from before the
		// restart is recorded then), before its new announce brings it
		// back, so the start is tried until a device takes it.
		if got := runHTTPWhenPlaceable(t, b, map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{10, 20}}); got.Status != "completed" || string(got.Results) != `"30"` {
			t.Fatalf("a new task: %s %s %q", got.Status, got.Results, got.Error)
		}
	})
	select {
	case <-b.Failed():
		t.Fatalf("the restarted server failed: %v", b.Err())
	default:
	}
}

// TestApp_DamagedStreams purges TASKS and deletes ARTIFACTS under a running
// server. Restarted, it starts (a replay of the emptied stream used to wait
// forever), reports both, and runs new tasks.
func TestApp_DamagedStreams(t *testing.T) {
	cfg := testConfig(t.TempDir(), 1)
	a := startApp(t, cfg)
	waitDevices(t, a, 1)
	runHTTP(t, a, map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{1, 2}})
	js := outsider(t, a)
	tasks, err := js.Stream(t.Context(), "TASKS")
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), "ARTIFACTS"); err != nil {
		t.Fatal(err)
	}
	a.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := app.Start(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start on the damaged data: %v", err)
	}
	t.Cleanup(b.Close)
	var h httpapi.Health
	mustJSON(t, call(t, "GET", b.HTTPURL()+"/health", nil, 200), &h)
	got := map[string]string{}
	for _, p := range h.Streams {
		got[p.Stream] = p.Problem
	}
	if h.Status != httpapi.HealthDegraded || h.Quarantined != 0 || len(got) != 2 ||
		got["TASKS"] != events.ProblemPurged || got["ARTIFACTS"] != events.ProblemMissing {
		t.Fatalf("health %+v", h)
	}
	r, err := client.New(b.HTTPURL(), nil).Quarantine(t.Context())
	if err != nil || len(r.Streams) != 2 || r.Streams[0].Detail == "" {
		t.Fatalf("quarantine report %+v, %v", r, err)
	}
	if n := len(b.Tasks().All()); n != 0 {
		t.Fatalf("%d tasks after the purge", n)
	}
	// The local proplet shows alive from the replayed DEVICES stream; its
	// goodbye from before the restart may mark it offline a moment before
	// its new announce: the start is tried until a device takes it.
	if got := runHTTPWhenPlaceable(t, b, map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{2, 2}}); got.Status != "completed" {
		t.Fatalf("a new task: %s %q", got.Status, got.Error)
	}
}
