package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestApp_StartNeverAccepted: a device that announces itself on its own
// topics, saying it accepts starts, but never takes one (it did not
// subscribe) is given a task;
// with no accept in time the task goes to a device that accepts and
// answers, and the silent one shows unreachable, with the reason, and is
// given nothing more.
func TestApp_StartNeverAccepted(t *testing.T) {
	cfg := testConfig(t.TempDir(), 0)
	cfg.AcceptTimeout = 5 * time.Second // the second device must be up by then: generous on a loaded box
	a := startApp(t, cfg)
	topics := wire.Topics{Tenant: cfg.Tenant, Channel: cfg.Channel}
	announce := func(c paho.Client, id string) {
		b, _ := json.Marshal(wire.Discovery{PropletID: id, Accepts: true})
		publish(t, c, topics.Topic(wire.OwnTopic(wire.SuffixCreate, id)), b)
	}

	silent := mqttClient(t, a.MQTTURL(), "silent")
	announce(silent, "silent")
	waitDevices(t, a, 1)
	var first apiTask
	json.Unmarshal(call(t, "POST", a.HTTPURL()+"/tasks", map[string]any{"name": "main", "image_url": "https://example.com/m.wasm"}, http.StatusCreated), &first)
	call(t, "POST", a.HTTPURL()+"/tasks/"+first.ID+"/start", nil, http.StatusOK)

	// A device that takes starts at QoS 0, accepts each and answers it.
	starts := make(chan wire.StartRequest, 16)
	good := mqttClient(t, a.MQTTURL(), "good")
	tok := good.Subscribe(topics.Topic(wire.OwnTopic("control/manager", "good")+"/+"), 0, func(_ paho.Client, m paho.Message) {
		if req, err := wire.DecodeStart(m.Payload()); err == nil {
			starts <- req
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	go func() {
		for req := range starts {
			acc, _ := json.Marshal(wire.Accepted{TaskID: req.ID, Attempt: req.Attempt, PropletID: "good"})
			good.Publish(topics.Topic(wire.OwnTopic(wire.SuffixAccepted, "good")), 1, false, acc)
			res, _ := json.Marshal(wire.Result{TaskID: req.ID, PropletID: "good", Attempt: req.Attempt, Results: json.RawMessage(`"42"`)})
			good.Publish(topics.Topic(wire.OwnTopic(wire.SuffixResults, "good")), 1, false, res)
		}
	}()
	announce(good, "good")

	var done apiTask
	natstest.CheckFor(t, 30*time.Second, func() error {
		json.Unmarshal(call(t, "GET", a.HTTPURL()+"/tasks/"+first.ID, nil, http.StatusOK), &done)
		if done.Status != "completed" {
			return fmt.Errorf("task is %s (%s)", done.Status, done.Error)
		}
		return nil
	})
	want := []string{"task.created", "task.scheduled", "task.undelivered", "task.scheduled", "task.started", "task.completed"}
	if got := eventTypes(t, a, events.TaskAggregate(first.ID)); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}

	var p httpapi.Proplet
	json.Unmarshal(call(t, "GET", a.HTTPURL()+"/proplets/silent", nil, http.StatusOK), &p)
	if p.Status != "unreachable" || p.Alive || !strings.Contains(p.Unreachable, "did not accept the start") {
		t.Fatalf("silent proplet: status %q alive %v unreachable %q", p.Status, p.Alive, p.Unreachable)
	}
	// Nothing more goes to the silent device.
	for range 3 {
		got := runHTTP(t, a, map[string]any{"name": "main", "image_url": "https://example.com/m.wasm"})
		if types := eventTypes(t, a, events.TaskAggregate(got.ID)); got.Status != "completed" || slices.Contains(types, "task.undelivered") {
			t.Fatalf("task %s is %s (%s), events %q", got.ID, got.Status, got.Error, types)
		}
	}
}
