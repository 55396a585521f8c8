package app_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestApp_IgnoredByReason: device messages the engine refuses, published
// by a real MQTT client, are counted by reason on GET /inbound/stats and
// on GET /metrics, every refusal confirmed on the stream leader.
func TestApp_IgnoredByReason(t *testing.T) {
	cfg := testConfig(t.TempDir(), 0)
	cfg.DeviceAliveLimit = mqtt.RateLimit{Rate: 1e-6, Burst: 2} // no refill during the test
	a := startApp(t, cfg)
	var pending struct{ ID string }
	body := call(t, "POST", a.HTTPURL()+"/tasks", map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{1, 2}}, http.StatusCreated)
	if err := json.Unmarshal(body, &pending); err != nil || pending.ID == "" {
		t.Fatalf("created %s: %v", body, err)
	}
	c := mqttClient(t, a.MQTTURL(), "outsider")
	topics := wire.Topics{Tenant: "t1", Channel: "c1"}
	publish(t, c, topics.Topic(wire.SuffixResults), []byte(`{"task_id":"nosuchtask","proplet_id":"p","results":"1"}`))
	publish(t, c, topics.Topic(wire.SuffixResults), []byte(`{"task_id":"`+pending.ID+`","proplet_id":"p","results":"1","attempt":1}`))
	publish(t, c, topics.Topic(wire.SuffixAccepted), []byte(`{"task_id":"`+pending.ID+`","proplet_id":"p","attempt":1}`))
	publish(t, c, topics.Topic("control/proplet/nosuch"), []byte(`{}`)) // a topic the engine does not handle
	publish(t, c, topics.Topic(wire.OwnTopic(wire.SuffixAlive, "big")), []byte(`{"proplet_id":"big","status":"alive","namespace":"`+strings.Repeat("x", wire.MaxAliveSize)+`"}`))
	for range 4 {
		publish(t, c, topics.Topic(wire.SuffixAlive), []byte(`{"proplet_id":"chatty","status":"alive"}`))
	}

	want := map[string]uint64{"unknown": 1, "stale": 1, "not_placed": 0, "quarantined": 0, "revoked": 0, "unhandled": 2, "too_large": 1, "rate_limited": 2}
	wantDropped := []httpapi.DeviceDrops{{Device: "chatty", RateLimited: 2}, {Device: "big", TooLarge: 1}}
	api := client.New(a.HTTPURL(), nil)
	natstest.CheckFor(t, 10*time.Second, func() error {
		s, err := api.InboundStats(t.Context())
		if err != nil {
			return err
		}
		if s.Ignored != 7 || !maps.Equal(s.IgnoredByReason, want) || s.Refusals.Confirmed < 2 || s.Refusals.Unconfirmed != 0 {
			return fmt.Errorf("GET /inbound/stats: %+v; want 7 ignored by %v, 2 refusals confirmed on the leader", s, want)
		}
		if !slices.Equal(s.DroppedDevices, wantDropped) {
			return fmt.Errorf("dropped_devices %+v, want %+v", s.DroppedDevices, wantDropped)
		}
		return nil
	})
	m, _ := scrapeMetrics(t, a, "")
	for reason, n := range want {
		if got := m.get("jetprop_inbound_ignored_total", "reason", reason); got != float64(n) {
			t.Errorf("jetprop_inbound_ignored_total{reason=%q} = %v, want %d", reason, got, n)
		}
	}
	if got := m.get("jetprop_refusals_total", "outcome", "confirmed"); got < 2 {
		t.Errorf("jetprop_refusals_total{outcome=confirmed} = %v, want >= 2", got)
	}
}
