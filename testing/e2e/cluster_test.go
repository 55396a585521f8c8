package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// The cluster chaos test: a 3-node JetStream cluster (in this process),
// two engine replicas and three proplets (processes), tasks and
// workflows while, in turn, the TASKS stream's leader node, the meta
// leader node, an engine replica and a proplet are killed and started
// again. What ran is taken from the proplets' runtime, a script that logs
// every execution: every task and step must end completed, each executed
// once, and `events replay --check` must be clean.
//
// `make test` runs a short round (TestCluster_Chaos); `make chaos-cluster`
// a long one (CHAOS_CLUSTER_TASKS, CHAOS_CLUSTER_WORKFLOWS).

func TestCluster_Chaos(t *testing.T) {
	skipShort(t)
	runClusterChaos(t, clusterChaos{
		tasks:     envInt(t, "CHAOS_CLUSTER_TASKS", 120),
		workflows: envInt(t, "CHAOS_CLUSTER_WORKFLOWS", 6),
	})
}

type clusterChaos struct {
	tasks, workflows int
}

// chaosCluster is the deployment under test.
type chaosCluster struct {
	t        *testing.T
	nodes    *natstest.Cluster
	engines  []*engineProc
	proplets []*scriptProplet
	log      string // the executions log every proplet's runtime appends to
}

// engineProc is `jetprop server` on the cluster.
type engineProc struct {
	t       *testing.T
	name    string
	dir     string
	http    int
	logPath string
	proc    *proc
	starts  int
	api     *client.Client // made at the first start: the port stays
	nodes   *natstest.Cluster
	mu      sync.Mutex // proc, for the load's goroutines while start replaces it
}

func (e *engineProc) start() {
	e.t.Helper()
	jetprop, _ := build(e.t)
	e.starts++
	args := []string{"server",
		"--data", e.dir, "--http", "127.0.0.1:" + strconv.Itoa(e.http),
		"--nats-url", e.nodes.EngineURLs(), "--mqtt-url", strings.Join(e.nodes.EngineMQTTURLs(), ","),
		// A proplet whose node stopped tries the next in its list, but a node
		// that is starting again can hold its connect for the whole connect
		// timeout (5 s): the liveness timeout, which is also how long a
		// device offline by its last will keeps its tasks, leaves room.
		"--replicas", "3", "--tenant", tenant, "--channel", channel,
		"--liveness-timeout", "10s", "--accept-timeout", "10s", "--log-level", "debug",
	}
	p := startProc(e.t, fmt.Sprintf("%s#%d", e.name, e.starts), e.logPath, nil, cleanEnv(), jetprop, args...)
	e.mu.Lock()
	e.proc = p
	e.mu.Unlock()
	if e.api == nil {
		e.api = client.New("http://127.0.0.1:"+strconv.Itoa(e.http), &http.Client{Timeout: 15 * time.Second})
	}
	natstest.CheckFor(e.t, 90*time.Second, func() error {
		if e.proc.exited() {
			e.t.Fatalf("%s exited: %v", e.name, e.proc.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := e.api.Health(ctx)
		return err
	})
}

// scriptProplet is bin/proplet whose runtime is a script logging each
// execution as "<marker> <proplet>#<incarnation>".
type scriptProplet struct {
	t       *testing.T
	id      string
	dataDir string
	urls    []string
	log     string
	logPath string
	starts  int
	proc    *proc
}

func (p *scriptProplet) start() {
	p.t.Helper()
	_, bin := build(p.t)
	p.starts++
	script := filepath.Join(p.t.TempDir(), "runtime.sh")
	body := fmt.Sprintf("#!/bin/sh\necho \"$2 %s#%d\" >> %s\necho \"$2\"\n", p.id, p.starts, p.log)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		p.t.Fatal(err)
	}
	env := cleanEnv(
		"PROPLET_MQTT_ADDRESS="+strings.Join(p.urls, ","),
		"PROPLET_TENANT_ID="+tenant, "PROPLET_CHANNEL_ID="+channel,
		"PROPLET_ENTITY_ID="+p.id, "PROPLET_DATA_DIR="+p.dataDir,
		"PROPLET_EXTERNAL_WASM_RUNTIME="+script,
		"PROPLET_LIVELINESS_INTERVAL=1", "PROPLET_LOG_LEVEL=debug",
	)
	p.proc = startProc(p.t, fmt.Sprintf("proplet %s#%d", p.id, p.starts), p.logPath, nil, env, bin)
}

func startChaosCluster(t *testing.T) *chaosCluster {
	t.Helper()
	c := &chaosCluster{t: t, nodes: natstest.StartCluster(t, 3), log: filepath.Join(t.TempDir(), "executions")}
	ports := freePorts(t, 2)
	for i := range 2 {
		e := &engineProc{t: t, name: fmt.Sprintf("engine%d", i), dir: t.TempDir(), http: ports[i],
			logPath: logFile(t, fmt.Sprintf("engine%d.log", i)), nodes: c.nodes}
		dumpOnFailure(t, e.name, e.logPath)
		e.start()
		c.engines = append(c.engines, e)
	}
	urls := c.nodes.MQTTURLs()
	for i := range 3 {
		// Each proplet starts on another node, and fails over to the next.
		own := append(slices.Clone(urls[i:]), urls[:i]...)
		p := &scriptProplet{t: t, id: fmt.Sprintf("edge%d", i), dataDir: t.TempDir(), urls: own, log: c.log,
			logPath: logFile(t, fmt.Sprintf("edge%d.log", i))}
		dumpOnFailure(t, "proplet "+p.id, p.logPath)
		p.start()
		t.Cleanup(func() { p.proc.stop(10 * time.Second) })
		c.proplets = append(c.proplets, p)
	}
	for _, e := range c.engines {
		natstest.CheckFor(t, 60*time.Second, func() error {
			l, err := e.api.ListProplets(context.Background(), 0, 10)
			if err != nil {
				return err
			}
			alive := 0
			for _, p := range l.Proplets {
				if p.Alive {
					alive++
				}
			}
			if alive < 3 {
				return fmt.Errorf("%s sees %d proplets alive", e.name, alive)
			}
			return nil
		})
	}
	return c
}

// api is an engine that answers, the first one that does.
func (c *chaosCluster) api() *client.Client {
	for _, e := range c.engines {
		if !e.exited() {
			return e.api
		}
	}
	c.t.Fatal("no engine runs")
	return nil
}

// executions reads the log: marker -> the runs (proplet#incarnation).
func (c *chaosCluster) executions() map[string][]string {
	c.t.Helper()
	f, err := os.Open(c.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		marker, by, _ := strings.Cut(sc.Text(), " ")
		out[marker] = append(out[marker], by)
	}
	return out
}

// retry calls fn until it succeeds, for up to a minute: engines and nodes
// come and go, and the client's own retries cover 503s only.
func retry[T any](t *testing.T, what string, fn func(ctx context.Context) (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		v, err := fn(ctx)
		cancel()
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %v", what, err)
			return v
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runClusterChaos(t *testing.T, cfg clusterChaos) {
	c := startChaosCluster(t)
	mod := wasmfixtures.Add()
	if _, err := c.api().PushArtifact(context.Background(), "run", "1", strings.NewReader(string(mod)), int64(len(mod)), nil); err != nil {
		t.Fatalf("push run:1: %v", err)
	}

	// The load: tasks created and started through both engines in turn,
	// and workflows of three chained steps.
	var created atomic.Int64
	var longest maxDuration
	taskIDs := make([]string, cfg.tasks)
	wfIDs := make([]string, cfg.workflows)
	load := make(chan struct{})
	go func() {
		defer close(load)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := range cfg.tasks {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				marker := "task-" + strconv.Itoa(i)
				began := time.Now()
				task := retry(t, "create "+marker, func(ctx context.Context) (httpapi.Task, error) {
					// One key for every try: a create that landed but whose
					// answer was lost gives the same task again.
					ctx = client.WithIdempotencyKey(ctx, "chaos-"+marker)
					return c.engines[i%2].apiOrAny(c).CreateTask(ctx, httpapi.TaskRequest{Name: "add", ImageURL: "run:1", Inputs: []string{marker}})
				})
				longest.observe(time.Since(began))
				taskIDs[i] = task.ID
				retry(t, "start "+marker, func(ctx context.Context) (httpapi.Task, error) {
					tk, err := c.engines[i%2].apiOrAny(c).StartTask(ctx, task.ID)
					var he *client.Error
					if errors.As(err, &he) && he.StatusCode == http.StatusConflict &&
						(strings.Contains(he.Message, "is already") || strings.Contains(he.Message, "has completed")) {
						return tk, nil // started by the try that timed out
					}
					return tk, err
				})
				created.Add(1)
			})
		}
		for i := range cfg.workflows {
			wg.Go(func() {
				spec := engine.WorkflowSpec{Name: "chain-" + strconv.Itoa(i)}
				for s := range 3 {
					st := engine.StepSpec{Name: "s" + strconv.Itoa(s), Module: "run:1", Function: "add",
						Inputs: []string{fmt.Sprintf("wf%d-s%d", i, s)}}
					if s > 0 {
						prev := "s" + strconv.Itoa(s-1)
						st.DependsOn, st.Inputs = []string{prev}, append(st.Inputs, "${steps."+prev+".result}")
					}
					spec.Steps = append(spec.Steps, st)
				}
				w := retry(t, "create workflow "+spec.Name, func(ctx context.Context) (httpapi.Workflow, error) {
					return c.api().CreateWorkflow(client.WithIdempotencyKey(ctx, "chaos-"+spec.Name), spec)
				})
				wfIDs[i] = w.ID
			})
		}
		wg.Wait()
	}()

	// The chaos, spread over the load.
	at := func(frac float64) {
		natstest.CheckFor(t, 5*time.Minute, func() error {
			if n := created.Load(); float64(n) < frac*float64(cfg.tasks) {
				return fmt.Errorf("%d of %d tasks started", n, cfg.tasks)
			}
			return nil
		})
	}
	at(0.15)
	c.killNode("TASKS stream leader", c.nodes.StreamLeader(natsserver.EngineAccount, "TASKS"))
	at(0.35)
	c.killNode("meta leader", c.nodes.MetaLeader())
	at(0.55)
	e := c.engines[1]
	t.Logf("kill -9 %s", e.name)
	e.proc.kill9()
	e.start()
	at(0.75)
	p := c.proplets[0]
	t.Logf("kill -9 proplet %s", p.id)
	p.proc.kill9()
	p.start()
	<-load

	// Every task and workflow ends completed.
	start := time.Now()
	for i, id := range taskIDs {
		if id == "" {
			continue // its create failed: reported by retry
		}
		natstest.CheckFor(t, 3*time.Minute, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tk, err := c.api().GetTask(ctx, id)
			if err != nil {
				return err
			}
			switch tk.Status {
			case "completed":
				return nil
			case "failed", "stopped":
				t.Errorf("task-%d (%s) ended %s: %s", i, id, tk.Status, tk.Error)
				return nil
			}
			return fmt.Errorf("task-%d (%s) is %s (attempt %d on %s)", i, id, tk.Status, tk.Attempt, tk.PropletID)
		})
	}
	for i, id := range wfIDs {
		if id == "" {
			continue
		}
		natstest.CheckFor(t, 3*time.Minute, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			w, err := c.api().GetWorkflow(ctx, id)
			if err != nil {
				return err
			}
			if !w.State.Terminal() {
				return fmt.Errorf("workflow %d (%s) is %s: %s", i, id, w.State, c.stepsOf(ctx, w.Workflow))
			}
			if w.State != engine.WorkflowCompleted {
				t.Errorf("workflow %d ended %s: %s", i, w.State, w.Reason)
			}
			return nil
		})
	}
	t.Logf("everything ended %s after the load; the longest create (with retries) took %s", time.Since(start).Round(time.Millisecond), longest.get())

	// What the devices ran: each task and step once. A second run is
	// excused only where the first was on the proplet killed meanwhile
	// (its journal may have lost a run that ended as it died).
	runs := c.executions()
	var markers []string
	for i := range cfg.tasks {
		markers = append(markers, "task-"+strconv.Itoa(i))
	}
	for i := range cfg.workflows {
		for s := range 3 {
			markers = append(markers, fmt.Sprintf("wf%d-s%d", i, s))
		}
	}
	twice := 0
	for _, m := range markers {
		switch by := runs[m]; {
		case len(by) == 0:
			t.Errorf("%s never ran on a device", m)
		case len(by) == 2 && by[0] == p.id+"#1":
			t.Logf("%s ran twice, first on the proplet killed meanwhile: %v", m, by)
		case len(by) > 1:
			twice++
			t.Errorf("%s ran %d times: %v", m, len(by), by)
		}
	}
	t.Logf("%d tasks and %d workflow steps; %d executed twice", cfg.tasks, 3*cfg.workflows, twice)

	// The log replays to the same state.
	jetprop, _ := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, jetprop, "events", "replay", "--check")
	cmd.Env = cleanEnv("JETPROP_SERVER=http://127.0.0.1:" + strconv.Itoa(c.engines[0].http))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("events replay --check: %v\n%s", err, out)
	}
}

// exited reports whether the engine's current process has ended.
func (e *engineProc) exited() bool {
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	return p.exited()
}

// apiOrAny is the engine's client, or any running engine's while it is
// down.
func (e *engineProc) apiOrAny(c *chaosCluster) *client.Client {
	if e.exited() {
		return c.api()
	}
	return e.api
}

// killNode stops node i and starts it again once the cluster has a meta
// leader and the TASKS stream a leader without it.
func (c *chaosCluster) killNode(what string, i int) {
	c.t.Helper()
	if i < 0 {
		c.t.Fatalf("no %s", what)
	}
	c.t.Logf("stop node n%d (%s)", i, what)
	// A probe writes (creates a task, never started) one after the other
	// through engine 0 while the node goes: its longest write is how long
	// writes were unavailable.
	probeDone, probed := make(chan struct{}), make(chan time.Duration)
	var writes atomic.Int64
	go func() {
		var longest time.Duration
		for n := 0; ; n++ {
			select {
			case <-probeDone:
				probed <- longest
				return
			default:
			}
			began := time.Now()
			ctx, cancel := context.WithTimeout(client.WithIdempotencyKey(context.Background(), fmt.Sprintf("probe-n%d-%d", i, n)), time.Minute)
			_, err := c.engines[0].api.CreateTask(ctx, httpapi.TaskRequest{Name: "add", ImageURL: "run:1", Inputs: []string{"probe"}})
			cancel()
			if err != nil {
				c.t.Errorf("probe write during the stop of n%d: %v", i, err)
			}
			longest = max(longest, time.Since(began))
			writes.Add(1)
		}
	}()
	stopped := time.Now()
	c.nodes.Stop(i)
	natstest.CheckFor(c.t, time.Minute, func() error {
		if c.nodes.MetaLeader() < 0 || c.nodes.StreamLeader(natsserver.EngineAccount, "TASKS") < 0 {
			return errors.New("no leaders yet")
		}
		return nil
	})
	c.t.Logf("leaders again %s after the stop", time.Since(stopped).Round(time.Millisecond))
	// Twenty more writes before the node comes back.
	after := writes.Load()
	natstest.CheckFor(c.t, time.Minute, func() error {
		if n := writes.Load() - after; n < 20 {
			return fmt.Errorf("%d probe writes since the leaders are back", n)
		}
		return nil
	})
	close(probeDone)
	c.t.Logf("longest write while n%d was stopped: %s", i, (<-probed).Round(time.Millisecond))
	c.nodes.Restart(i)
	c.t.Logf("node n%d back", i)
}

// maxDuration keeps the longest of the durations it observes.
type maxDuration struct {
	mu sync.Mutex
	d  time.Duration
}

func (m *maxDuration) observe(d time.Duration) {
	m.mu.Lock()
	m.d = max(m.d, d)
	m.mu.Unlock()
}

func (m *maxDuration) get() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.d.Round(time.Millisecond)
}

// stepsOf says where each step of w is, and where the task of a step
// that is not done is: what a stuck workflow waits for.
func (c *chaosCluster) stepsOf(ctx context.Context, w engine.Workflow) string {
	var b strings.Builder
	for _, st := range w.Steps {
		fmt.Fprintf(&b, "%s %s (attempt %d", st.Name, st.State, st.Attempt)
		if st.TaskID != "" {
			fmt.Fprintf(&b, ", task %s", st.TaskID)
			if st.State != engine.StepCompleted {
				if tk, err := c.api().GetTask(ctx, st.TaskID); err != nil {
					fmt.Fprintf(&b, ": %v", err)
				} else {
					fmt.Fprintf(&b, ": %s, attempt %d on %s", tk.Status, tk.Attempt, tk.PropletID)
				}
			}
		}
		b.WriteString("); ")
	}
	return b.String()
}
