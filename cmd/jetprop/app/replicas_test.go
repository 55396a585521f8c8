package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// executions is a log the proplets' runtime appends a line to for every
// task it runs: what the devices did, not what the events say.
type executions string

// runtime writes an external runtime (a shell script standing in for
// wasmtime) that logs its first argument, the task's first input, to the
// log, and answers "ran".
func (x executions) runtime(t *testing.T) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "logging-runtime")
	body := "#!/bin/sh\necho \"$2\" >> " + string(x) + "\necho ran\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// counts is how many times each marker ran.
func (x executions) counts(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(string(x))
	if os.IsNotExist(err) {
		return map[string]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n[sc.Text()]++
	}
	return n
}

// startReplica starts an engine replica on the shared server ns.
func startReplica(t *testing.T, ns *natsserver.Server) *app.App {
	t.Helper()
	cfg := testConfig(t.TempDir(), 0)
	cfg.NATSURL, cfg.MQTTURL = ns.EngineURL(), ns.EngineMQTTURL()
	return startApp(t, cfg)
}

// TestApp_ReplicasDispatchOnce: two engine replicas on one JetStream
// share the dispatching (each holds half of the partitions), and every
// task runs exactly once on the devices, counted by the devices'
// runtime; when one replica stops, the other takes all of it.
func TestApp_ReplicasDispatchOnce(t *testing.T) {
	ns := natstest.Start(t)
	a1, a2 := startReplica(t, ns), startReplica(t, ns)
	log := executions(filepath.Join(t.TempDir(), "executions"))
	rt := log.runtime(t)
	// Two proplets on their own topics (they accept starts, and their
	// journal would hide a second start of an attempt they ran) and two
	// on Propeller's shared topics, which, like Propeller's, run every
	// start they get: a start sent twice runs twice there.
	for i := range 4 {
		p, err := proplet.New(proplet.Config{MQTTAddress: ns.MQTTURL(), Tenant: "t1", Channel: "c1", SharedTopics: i%2 == 1,
			DataDir: t.TempDir(), QoS: 1, ExternalRuntime: rt, EntityID: fmt.Sprintf("p%d", i)}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		runUntilCleanup(t, p)
	}
	waitDevices(t, a1, 4)
	waitDevices(t, a2, 4)
	natstest.CheckFor(t, 20*time.Second, func() error {
		n1, n2 := len(a1.Leases().Owned()), len(a2.Leases().Owned())
		if n1+n2 != a1.Leases().Partitions() || n1 == 0 || n2 == 0 {
			return fmt.Errorf("replicas hold %d and %d partitions of %d", n1, n2, a1.Leases().Partitions())
		}
		return nil
	})

	run := func(first, n int) {
		var wg sync.WaitGroup
		for i := first; i < first+n; i++ {
			a := []*app.App{a1, a2}[i%2]
			if i >= 40 {
				a = a1
			}
			wg.Go(func() {
				var created apiTask
				body := map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []string{"task-" + strconv.Itoa(i)}}
				json.Unmarshal(call(t, "POST", a.HTTPURL()+"/tasks", body, http.StatusCreated), &created)
				call(t, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/start", nil, http.StatusOK)
				if done := waitFinished(t, a1, created.ID); done.Status != "completed" {
					t.Errorf("task %d: %+v", i, done)
				}
			})
		}
		wg.Wait()
	}
	run(0, 40)

	// One replica goes: the other holds every partition, and dispatches.
	a2.Close()
	natstest.CheckFor(t, 20*time.Second, func() error {
		if n := len(a1.Leases().Owned()); n != a1.Leases().Partitions() {
			return fmt.Errorf("the remaining replica holds %d partitions", n)
		}
		return nil
	})
	run(40, 20)

	got := log.counts(t)
	for i := range 60 {
		if n := got["task-"+strconv.Itoa(i)]; n != 1 {
			t.Errorf("task-%d ran %d times on the devices", i, n)
		}
	}
}

func runUntilCleanup(t *testing.T, p *proplet.Proplet) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
