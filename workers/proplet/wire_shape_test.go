package proplet_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestProplet_PropellerShapes: on the shared topics the proplet's messages
// have the shape Propeller's Rust proplet gives them (proplet/src/types.rs):
// a failed task's results is "" (ResultMessage.results is a String), and
// namespace is in discovery and heartbeats even when empty.
func TestProplet_PropellerShapes(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	cfg.Namespace = ""
	startProplet(t, cfg, m)
	m.start(wire.StartRequest{ID: "bad", Name: "nosuchexport", File: wasmfixtures.Add()})
	_, raw := m.waitResult("bad")
	fields := objectOf(t, raw)
	if string(fields["results"]) != `""` || len(fields["error"]) < 3 || !sameKeys(fields, "task_id", "proplet_id", "results", "error") {
		t.Fatalf("error result %s, want Propeller's shape with results \"\"", raw)
	}
	natstest.CheckFor(t, wait, func() error {
		if len(m.received(wire.SuffixAlive)) == 0 {
			return errNoHeartbeat
		}
		return nil
	})
	for _, b := range [][]byte{m.received(wire.SuffixCreate)[0], m.received(wire.SuffixAlive)[0]} {
		if ns, ok := objectOf(t, string(b))["namespace"]; !ok || string(ns) != `""` {
			t.Fatalf("%s: want namespace present, empty", b)
		}
	}
}

var errNoHeartbeat = errors.New("no heartbeat yet")

func objectOf(t *testing.T, raw string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m
}

func sameKeys(m map[string]json.RawMessage, keys ...string) bool {
	if len(m) != len(keys) {
		return false
	}
	for k := range m {
		if !slices.Contains(keys, k) {
			return false
		}
	}
	return true
}
