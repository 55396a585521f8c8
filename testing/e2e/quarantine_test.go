package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestQuarantine_RealBinary is the attack that took the server down: a
// message that is not an event, stored in TASKS behind the engine's back,
// made `jetprop up` exit ("stored message is not an event: bad Jp-Time")
// and refuse to start again; a purged TASKS made the next start hang. Now
// the server keeps running, starts again after kill -9, reports both, and
// `jetprop events doctor` exits 1 naming them.
func TestQuarantine_RealBinary(t *testing.T) {
	skipShort(t)
	s := startServer(t, t.TempDir(), newPorts(t), 0)
	ctx := t.Context()
	task, err := s.api.CreateTask(ctx, httpapi.TaskRequest{Name: "add", ImageURL: "docker.io/acme/add:1"})
	if err != nil {
		t.Fatal(err)
	}
	js := s.outsider()
	m := nats.NewMsg("jp.evt.task.x")
	m.Header, m.Data = nats.Header{"Nmqtt-Pub": {"0"}}, []byte("{}") // what an MQTT publish on jp/evt/task/x stored
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	s.waitHealth(httpapi.HealthDegraded)
	if s.proc.exited() {
		t.Fatalf("the server exited: %v", s.proc.err)
	}

	s.kill9()
	s.restart(0)
	s.waitHealth(httpapi.HealthDegraded)
	out, code := s.cliExit("events", "doctor")
	if code != 1 || !strings.Contains(out, "task/x  TASKS seq 2") || !strings.Contains(out, "no Jp-Type header") {
		t.Fatalf("events doctor: exit %d\n%s", code, out)
	}
	out, code = s.cliExit("task", "start", "x")
	if code != 1 || !strings.Contains(out, "task/x is quarantined") || !strings.Contains(out, "HTTP 409") {
		t.Fatalf("task start x: exit %d\n%s", code, out)
	}
	if got, err := s.api.GetTask(ctx, task.ID); err != nil || got.Quarantined != nil {
		t.Fatalf("the good task: %+v, %v", got, err)
	}

	tasks, err := s.outsider().Stream(ctx, "TASKS")
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	s.kill9()
	s.restart(0) // fails the test if the start hangs for 60 s
	s.waitHealth(httpapi.HealthDegraded)
	out, code = s.cliExit("events", "doctor")
	if code != 1 || !strings.Contains(out, "TASKS purged: first seq 3, last seq 2, 0 messages") || strings.Contains(out, "task/x") {
		t.Fatalf("events doctor after the purge: exit %d\n%s", code, out)
	}
	if _, err := s.api.CreateTask(ctx, httpapi.TaskRequest{Name: "add", ImageURL: "docker.io/acme/add:1"}); err != nil {
		t.Fatalf("a new task after the purge: %v", err)
	}
}

// outsider is a NATS client of the server's NATS port with the engine's
// credentials: only the engine may write the event streams, so the bad
// messages come as a bug or an operator's mistake would bring them.
func (s *server) outsider() jetstream.JetStream {
	s.t.Helper()
	nc := s.natsConn()
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return js
}

// waitHealth waits until GET /health reports status.
func (s *server) waitHealth(status string) {
	s.t.Helper()
	natstest.CheckFor(s.t, 30*time.Second, func() error {
		h, err := s.api.Health(s.t.Context())
		if err != nil {
			return err
		}
		if h.Status != status {
			return errors.New("health is " + h.Status + ", want " + status)
		}
		return nil
	})
}

// cliExit runs a jetprop client command against the server and returns its
// output (stdout and stderr) and exit code.
func (s *server) cliExit(args ...string) (string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = cleanEnv("JETPROP_SERVER=" + s.url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	s.t.Fatalf("jetprop %s: %v", strings.Join(args, " "), err)
	return "", -1
}
