package proplet_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// accepts returns the accepts seen for a task, in order.
func (m *manager) accepts(taskID string) []wire.Accepted {
	var out []wire.Accepted
	for _, b := range m.received(wire.SuffixAccepted) {
		a, err := wire.DecodeAccepted(b)
		if err != nil {
			m.t.Errorf("accepted %s: %v", b, err)
			continue
		}
		if a.TaskID == taskID {
			out = append(out, a)
		}
	}
	return out
}

// waitAccepts waits for n accepts of a task and returns them.
func (m *manager) waitAccepts(taskID string, n int) []wire.Accepted {
	m.t.Helper()
	var got []wire.Accepted
	natstest.CheckFor(m.t, wait, func() error {
		if got = m.accepts(taskID); len(got) < n {
			return fmt.Errorf("%d accepts of %s, want %d", len(got), taskID, n)
		}
		return nil
	})
	return got
}

// TestProplet_Accepts: a start on the proplet's own topic is answered with
// an accept. The same start sent again (the engine does so until it hears
// the accept) is accepted again and not run again: while the task runs,
// once it has finished, and after the proplet restarts on its data dir.
func TestProplet_Accepts(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := ownConfig(t, s)
	id := cfg.EntityID
	p := startProplet(t, cfg, m)
	req := wire.StartRequest{ID: "daemon", Name: "loop", File: wasmfixtures.Loop(), Daemon: true, Attempt: 3}

	m.startOwn(id, req)
	a := m.waitAccepts("daemon", 1)[0]
	if a != (wire.Accepted{TaskID: "daemon", Attempt: 3, PropletID: id}) {
		t.Fatalf("accepted %+v", a)
	}
	if got := m.senders(wire.SuffixAccepted); !slices.Equal(got, []string{id}) {
		t.Fatalf("accepted sent on %q, want its own topic", got)
	}
	waitRunning(t, p, "daemon")

	// Again while it runs.
	m.startOwn(id, req)
	m.waitAccepts("daemon", 2)
	m.marker(id, "marker-1")
	if n := p.runs("daemon"); n != 1 {
		t.Fatalf("started %d times", n)
	}
	m.stopOwn(id, "daemon")
	if r := m.waitResults("daemon", 1)[0]; r.Error != "stopped" || r.Attempt != 3 {
		t.Fatalf("result %+v", r)
	}

	// Again once it finished.
	m.startOwn(id, req)
	m.waitAccepts("daemon", 3)
	m.marker(id, "marker-2")
	if n, rs := p.runs("daemon"), m.waitResults("daemon", 1); n != 1 || len(rs) != 1 {
		t.Fatalf("once it finished: started %d times, %d results", n, len(rs))
	}

	// Again after a restart.
	p.stop(t)
	waitGone(t, s.NATS(), id)
	p = startProplet(t, cfg, m)
	m.startOwn(id, req)
	m.waitAccepts("daemon", 4)
	m.marker(id, "marker-3")
	if n, rs := p.runs("daemon"), m.waitResults("daemon", 1); n != 0 || len(rs) != 1 {
		t.Fatalf("after a restart: started %d times, %d results", n, len(rs))
	}

	// A newer attempt runs.
	newer := req
	newer.Attempt = 4
	m.startOwn(id, newer)
	if a := m.waitAccepts("daemon", 5)[4]; a.Attempt != 4 {
		t.Fatalf("accepted %+v", a)
	}
	waitRunning(t, p, "daemon")
	m.stopOwn(id, "daemon")
	if r := m.waitResults("daemon", 2)[1]; r.Error != "stopped" || r.Attempt != 4 {
		t.Fatalf("result %+v", r)
	}
}

// TestProplet_AcceptsOnlyOnOwnTopics: on the shared topics (Propeller's
// manager) nothing is accepted, and a start sent again after its task
// finished runs again, as before.
func TestProplet_AcceptsOnlyOnOwnTopics(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	req := wire.StartRequest{ID: "shared", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}, Attempt: 1}
	m.start(req)
	m.waitResults("shared", 1)
	m.start(req)
	m.waitResults("shared", 2)
	if got := m.received(wire.SuffixAccepted); len(got) != 0 || p.runs("shared") != 2 {
		t.Fatalf("accepts %q, %d runs", got, p.runs("shared"))
	}
}

// TestProplet_AttemptOrder: a start of an attempt older than the newest
// one run here is ignored (no accept, no run); a newer one runs, and
// stops an older one still running.
func TestProplet_AttemptOrder(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := ownConfig(t, s)
	id := cfg.EntityID
	p := startProplet(t, cfg, m)
	add := func(attempt int) wire.StartRequest {
		return wire.StartRequest{ID: "t", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"2", "2"}, Attempt: attempt}
	}
	m.startOwn(id, add(2))
	m.waitResults("t", 1)

	m.startOwn(id, add(1))
	m.marker(id, "marker-1")
	p.waitLog(t, `msg="start of an older attempt ignored"`, "task_id=t ", "attempt=1", "newest_attempt=2")
	if rs, _ := m.results("t"); len(rs) != 1 || p.runs("t") != 1 || len(m.accepts("t")) != 1 {
		t.Fatalf("%d results, %d runs, accepts %+v", len(rs), p.runs("t"), m.accepts("t"))
	}

	m.startOwn(id, add(3))
	if r := m.waitResults("t", 2)[1]; r.Attempt != 3 || r.Text() != "4" {
		t.Fatalf("result %+v", r)
	}
	if a := m.waitAccepts("t", 2)[1]; a.Attempt != 3 {
		t.Fatalf("accepted %+v", a)
	}

	t.Run("a newer attempt stops the older one running", func(t *testing.T) {
		loop := wire.StartRequest{ID: "d", Name: "loop", File: wasmfixtures.Loop(), Daemon: true, Attempt: 1}
		m.startOwn(id, loop)
		waitRunning(t, p, "d")
		loop.Attempt = 2
		m.startOwn(id, loop)
		r := m.waitResults("d", 1)[0]
		if r.Attempt != 1 || !strings.Contains(string(r.Error), proplet.ErrSuperseded.Error()) {
			t.Fatalf("result of the older attempt %+v", r)
		}
		m.waitAccepts("d", 2)
		waitRunning(t, p, "d")
		loop.Attempt = 1 // a late copy of the first start
		m.startOwn(id, loop)
		// A late copy of a stop of the first attempt (the engine sends a
		// stop more than once) leaves the second running.
		m.publish(wire.OwnTopic(wire.SuffixStop, id), wire.StopRequest{ID: "d", PropletID: id, Attempt: 1})
		m.marker(id, "marker-2")
		p.waitLog(t, `msg="stop for another attempt ignored"`, "task_id=d ", "attempt=1")
		m.stopOwn(id, "d")
		rs := m.waitResults("d", 2)
		if rs[1].Attempt != 2 || rs[1].Error != "stopped" || p.runs("d") != 2 || len(m.accepts("d")) != 2 {
			t.Fatalf("results %+v, %d runs, accepts %+v", rs, p.runs("d"), m.accepts("d"))
		}
	})
	t.Run("a late stop does not stop the next attempt", func(t *testing.T) {
		m.stopOwn(id, "t") // t ended; the engine sent its stop again
		m.startOwn(id, add(4))
		if r := m.waitResults("t", 3)[2]; r.Attempt != 4 || r.Failed() {
			t.Fatalf("result %+v", r)
		}
	})
}

// TestProplet_AcceptsInterruptedAttempt: a proplet killed while it runs an
// attempt reports it interrupted when it starts again; the engine,
// which never heard the accept, sends the start again: it is accepted,
// not run.
func TestProplet_AcceptsInterruptedAttempt(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := ownConfig(t, s)
	id := cfg.EntityID
	c := startChild(t, cfg)
	m.waitDiscoveries(1)
	req := wire.StartRequest{ID: "crash", Name: "loop", File: wasmfixtures.Loop(), Daemon: true, Attempt: 2}
	m.startOwn(id, req)
	c.waitLog(`msg="task started"`, "task_id=crash")
	c.kill()
	waitGone(t, s.NATS(), id)

	p := startProplet(t, cfg, m)
	if r := m.waitResults("crash", 1)[0]; r.Error != "interrupted: proplet restarted" || r.Attempt != 2 {
		t.Fatalf("result %+v", r)
	}
	before := len(m.accepts("crash"))
	m.startOwn(id, req)
	if a := m.waitAccepts("crash", before+1)[before]; a.Attempt != 2 {
		t.Fatalf("accepted %+v", a)
	}
	m.marker(id, "marker")
	if rs, _ := m.results("crash"); len(rs) != 1 || p.runs("crash") != 0 {
		t.Fatalf("%d results, %d runs after the restart", len(rs), p.runs("crash"))
	}
}
