package proplet_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/journal"
	"github.com/jetprop/jetprop/workers/proplet"
)

// ackResult publishes the engine's ack of a result on the proplet's own topic.
func (m *manager) ackResult(device, taskID string, attempt int) {
	m.t.Helper()
	m.publish(wire.OwnTopic(wire.SuffixResultAck, device), wire.ResultAck{TaskID: taskID, Attempt: attempt})
}

// keptResults opens the journal of a stopped proplet and lists the
// results it keeps until acked, as "task/attempt".
func keptResults(t *testing.T, dir string) []string {
	t.Helper()
	j, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var out []string
	for _, r := range j.Results() {
		out = append(out, fmt.Sprintf("%s/%d", r.TaskID, r.Attempt))
	}
	return out
}

func addTask(id string, attempt int) wire.StartRequest {
	return wire.StartRequest{ID: id, Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}, Attempt: attempt}
}

func resendConfig(t *testing.T, s *natsserver.Server) proplet.Config {
	cfg := ownConfig(t, s)
	cfg.ResultResend = 50 * time.Millisecond
	return cfg
}

// TestProplet_ResultResentUntilAcked: a result on the proplet's own topics
// is sent again, the same each time, until the engine acks it; then it is
// no longer kept.
func TestProplet_ResultResentUntilAcked(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := resendConfig(t, s)
	p := startProplet(t, cfg, m)
	m.startOwn(cfg.EntityID, addTask("t", 2))
	rs := m.waitResults("t", 3)
	for _, r := range rs {
		if r.Attempt != 2 || r.Text() != "3" || r.PropletID != cfg.EntityID {
			t.Fatalf("result %+v, want attempt 2 with 3", r)
		}
	}
	m.ackResult(cfg.EntityID, "t", 1) // an older attempt's ack does not count
	m.ackResult(cfg.EntityID, "t", 2)
	p.waitLog(t, "result acked", "task_id=t")
	p.stop(t)
	if got := keptResults(t, cfg.DataDir); len(got) != 0 {
		t.Fatalf("kept after the ack: %q", got)
	}
	if p.ResultsResent() < 2 {
		t.Errorf("%d copies sent again", p.ResultsResent())
	}
}

// TestProplet_UnackedResultSurvivesRestart: a result not acked when the
// proplet stops is kept in its journal, and sent again by the next run on
// the same data dir until acked.
func TestProplet_UnackedResultSurvivesRestart(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := ownConfig(t, s)
	cfg.ResultResend = time.Hour // nothing is sent again but by the restart
	p := startProplet(t, cfg, m)
	m.startOwn(cfg.EntityID, addTask("t", 1))
	m.waitResults("t", 1)
	p.stop(t)
	if got := keptResults(t, cfg.DataDir); len(got) != 1 || got[0] != "t/1" {
		t.Fatalf("kept %q, want t/1", got)
	}
	n := len(m.received(wire.SuffixResults))
	p = startProplet(t, cfg, m)
	rs := m.waitResults("t", n+1)
	if r := rs[len(rs)-1]; r.Attempt != 1 || r.Text() != "3" {
		t.Fatalf("result sent after the restart %+v", r)
	}
	m.ackResult(cfg.EntityID, "t", 1)
	p.waitLog(t, "result acked", "task_id=t")
	p.stop(t)
	if got := keptResults(t, cfg.DataDir); len(got) != 0 {
		t.Fatalf("kept after the ack: %q", got)
	}
}

// TestProplet_UnackedResultsBound: beyond UnackedResults the oldest
// result is dropped, with a log line, and no longer sent again.
func TestProplet_UnackedResultsBound(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := ownConfig(t, s)
	cfg.ResultResend, cfg.UnackedResults = time.Hour, 2
	p := startProplet(t, cfg, m)
	for _, id := range []string{"a", "b", "c"} {
		m.startOwn(cfg.EntityID, addTask(id, 1))
		m.waitResults(id, 1)
	}
	p.waitLog(t, "unacked result dropped", "task_id=a")
	p.stop(t)
	if got := keptResults(t, cfg.DataDir); len(got) != 2 || got[0] != "b/1" || got[1] != "c/1" {
		t.Fatalf("kept %q, want b/1 c/1", got)
	}
}

// TestProplet_SharedTopicsKeepNoResults: on Propeller's shared topics no
// ack comes, so results are not kept.
func TestProplet_SharedTopicsKeepNoResults(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	cfg.ResultResend = 10 * time.Millisecond
	p := startProplet(t, cfg, m)
	m.start(addTask("t", 1))
	m.waitResults("t", 1)
	p.stop(t)
	if got := keptResults(t, cfg.DataDir); len(got) != 0 || p.ResultsResent() != 0 {
		t.Fatalf("kept %q, %d sent again", got, p.ResultsResent())
	}
}
