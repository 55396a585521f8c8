package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/examples"
	"github.com/jetprop/jetprop/testing/natstest"
)

// addend is the second input of every chaos task: add(n, addend).
const addend = 1000

// TestKill9_AnyMoment kills the server with SIGKILL at random moments while
// two clients create and start tasks as fast as the API answers, and starts
// it again each time, straight into the next round (so later kills also
// land while the restarted server re-dispatches and proplets resend). After
// every restart: every task a client got a 2xx for exists, no task is in a
// state its history cannot explain, and every task whose start was answered
// 2xx is past pending. At the end every started task has ended with the
// right result, and every task's events are a valid lifecycle.
//
// With the local proplet (`jetprop up --proplets 1`) the kill also kills
// the proplet; a task it had accepted and not finished is reported by its
// journal, when it comes back, as interrupted ("interrupted: proplet
// restarted"): the engine loses that attempt (task.lost) and places the
// task again, or fails it after engine.DefaultTaskMaxAttempts such
// attempts, so those histories are allowed there. An external proplet (bin/proplet) outlives the server, so there
// every started task must complete.
func TestKill9_AnyMoment(t *testing.T) {
	skipShort(t)
	t.Run("local proplet", func(t *testing.T) { anyMoment(t, false) })
	t.Run("external proplet", func(t *testing.T) { anyMoment(t, true) })
}

func anyMoment(t *testing.T, external bool) {
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	rounds := envInt(t, "JETPROP_CHAOS_ROUNDS", 3)

	p := newPorts(t)
	local := 1
	if external {
		local = 0
	}
	s := startServer(t, t.TempDir(), p, local)
	var edge *edgeProplet
	if external {
		edge = startEdgeProplet(t, p.mqtt, "edge-chaos", "1")
	}
	waitUp(t, s.api, 1)
	// reconnected waits, with an external proplet, until it has connected
	// to every server started so far: paho's reconnect backoff grows with
	// each lost connection (up to 30 s), which would leave most rounds'
	// tasks waiting in its session instead of running.
	reconnected := func() {
		if edge != nil {
			natstest.CheckFor(t, 60*time.Second, func() error {
				if n := edge.count("msg=connected"); n < s.starts {
					return fmt.Errorf("the proplet connected %d times, the server started %d", n, s.starts)
				}
				return nil
			})
		}
	}
	led := newLedger(!external)
	var seq atomic.Int64
	var ended snapshot // tasks that had ended before the last kill
	for round := range rounds {
		if round > 0 {
			s.restart(local)
			now := takeSnapshot(t, s.api)
			checkInvariants(t, now.Tasks, led)
			requireEnded(t, ended, now)
			reconnected()
		}
		delay := time.Duration(rng.IntN(1500)) * time.Millisecond
		created, started := led.counts()
		stopLoad := load(s.url, led, &seq, 2)
		if round == 0 { // so that the load ran, whatever the delays and the machine's speed
			natstest.CheckFor(t, 30*time.Second, func() error {
				if c, _ := led.counts(); c == 0 {
					return errors.New("no task created yet")
				}
				return nil
			})
		}
		time.Sleep(delay) // kill timing, not a wait for a condition
		ended = endedTasks(takeSnapshot(t, s.api))
		s.kill9()
		stopLoad()
		c2, s2 := led.counts()
		t.Logf("round %d: killed %s into the load; %d tasks created and %d started in the round (2xx)", round, delay, c2-created, s2-started)
	}
	s.restart(local)
	now := takeSnapshot(t, s.api)
	tasks := now.Tasks
	checkInvariants(t, tasks, led)
	requireEnded(t, ended, now)
	created, started := led.counts()
	if created == 0 {
		t.Fatal("no task was created: the load did not run")
	}

	start := time.Now()
	tasks = waitEnded(t, s, led)
	count := map[string]int{}
	for _, task := range tasks {
		count[task.Status]++
	}
	t.Logf("after %d kills: %d tasks (%d created and %d started with a 2xx); all ended %s after the last restart: %v",
		rounds, len(tasks), created, started, time.Since(start).Round(time.Millisecond), count)
	checkLifecycles(t, s.api, tasks, led.interruptible)
}

// waitEnded waits until no task is scheduled or running, checking the
// invariants all along, and returns the tasks. A start the local proplet
// received and had not acknowledged when it was killed comes back only
// when nats-server's MQTT ack wait (30 s) expires (see
// TestMQTT_UnackedStartRedeliveredOnReconnect), hence the long wait.
func waitEnded(t *testing.T, s *server, led *ledger) []httpapi.Task {
	t.Helper()
	start := time.Now()
	var tasks []httpapi.Task
	var left []string
	natstest.CheckFor(t, 90*time.Second, func() error {
		tasks = takeSnapshot(t, s.api).Tasks
		checkInvariants(t, tasks, led)
		left = left[:0]
		for _, task := range tasks {
			if task.Status == "scheduled" || task.Status == "running" {
				left = append(left, task.ID+" "+task.Status)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("%d started tasks have not ended: %v", len(left), left)
		}
		return nil
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Logf("the last tasks took %s to end after the restart", took.Round(time.Millisecond))
	}
	return tasks
}

// endedTasks keeps the tasks of s that have ended: nothing may change them.
func endedTasks(s snapshot) snapshot {
	var out snapshot
	for _, task := range s.Tasks {
		if task.Status != "pending" && task.Status != "scheduled" && task.Status != "running" {
			out.Tasks = append(out.Tasks, task)
		}
	}
	return out
}

// requireEnded fails unless every task in ended is in now, unchanged.
func requireEnded(t *testing.T, ended, now snapshot) {
	t.Helper()
	have := map[string]bool{}
	for _, task := range ended.Tasks {
		have[task.ID] = true
	}
	now = snapshot{Tasks: slices.DeleteFunc(slices.Clone(now.Tasks), func(x httpapi.Task) bool { return !have[x.ID] })}
	requireSame(t, "tasks that had ended before the kill", ended, now)
}

// chaosSeed is JETPROP_CHAOS_SEED, else a new seed; it is logged so a
// failing run can be replayed.
func chaosSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("JETPROP_CHAOS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("JETPROP_CHAOS_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay with JETPROP_CHAOS_SEED=%d)", seed, seed)
	return seed
}

func envInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a whole number >= 1", key, v)
	}
	return n
}

// ledger is what the clients were told: the tasks created (with their n)
// and the tasks whose start was accepted, by 2xx answers.
// interruptible says whether the proplet dies with the server, so a task
// may end failed with the proplet's errInterrupted.
type ledger struct {
	interruptible bool

	mu      sync.Mutex
	created map[string]int
	started map[string]bool
}

func newLedger(interruptible bool) *ledger {
	return &ledger{interruptible: interruptible, created: map[string]int{}, started: map[string]bool{}}
}

func (l *ledger) create(id string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.created[id] = n
}

func (l *ledger) start(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started[id] = true
}

func (l *ledger) counts() (created, started int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.created), len(l.started)
}

func (l *ledger) copy() (map[string]int, map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	created, started := make(map[string]int, len(l.created)), make(map[string]bool, len(l.started))
	for k, v := range l.created {
		created[k] = v
	}
	for k := range l.started {
		started[k] = true
	}
	return created, started
}

// load runs `workers` clients that create and start add(n, addend) tasks
// until the returned stop is called; stop waits for them.
func load(url string, led *ledger, seq *atomic.Int64, workers int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	c := client.New(url, &http.Client{Timeout: 5 * time.Second})
	module := examples.Add()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := int(seq.Add(1))
				task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: module, Inputs: wire.Strings{strconv.Itoa(n), strconv.Itoa(addend)}})
				if err != nil {
					pause(ctx, 20*time.Millisecond) // the server is down: try again until stopped
					continue
				}
				led.create(task.ID, n)
				if _, err := c.StartTask(ctx, task.ID); err == nil {
					led.start(task.ID)
				}
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// checkInvariants checks the tasks the server shows against what the
// clients were told, and each task against the states its events allow.
func checkInvariants(t *testing.T, tasks []httpapi.Task, led *ledger) {
	t.Helper()
	created, started := led.copy()
	byID := map[string]httpapi.Task{}
	var errs []error
	for _, task := range tasks {
		byID[task.ID] = task
		if err := checkTask(task, led.interruptible); err != nil {
			errs = append(errs, err)
		}
	}
	for id, n := range created {
		task, ok := byID[id]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("task %s (add %d) was created (2xx) and is gone", id, n))
		case started[id] && task.Status == "pending":
			errs = append(errs, fmt.Errorf("task %s was started (2xx) and is pending again", id))
		case !slices.Equal(task.Inputs, []string{strconv.Itoa(n), strconv.Itoa(addend)}):
			errs = append(errs, fmt.Errorf("task %s was created as add %d, shows inputs %v", id, n, task.Inputs))
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d invariants broken:\n%v", len(errs), errors.Join(errs...))
	}
}

// errInterrupted is the result error a proplet reports, once it is back,
// for a task it had accepted and not finished when it died.
const errInterrupted = "interrupted: proplet restarted"

// checkTask reports a task in a state no history of an add task that is
// created, started once and never stopped can lead to; with interruptible,
// attempts the proplet reported interrupted may have been lost and tried
// again (each one in ended_attempts), and the task may have failed after
// the last of them.
func checkTask(task httpapi.Task, interruptible bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("task %s: %s: %s", task.ID, fmt.Sprintf(format, args...), jsonOf(task))
	}
	if task.Name != "add" || len(task.Inputs) != 2 || task.Module == "" || task.CreatedAt.IsZero() || task.UpdatedAt.Before(task.CreatedAt) {
		return bad("not the task the clients created")
	}
	lost := len(task.EndedAttempts)
	for i, e := range task.EndedAttempts {
		if !interruptible || e.Attempt != i+1 || e.Reason != errInterrupted {
			return bad("attempt %d ended without its result, and not as one the proplet reported interrupted", e.Attempt)
		}
	}
	finished, begun := !task.FinishTime.IsZero(), !task.StartTime.IsZero()
	switch task.Status {
	case "pending":
		if task.State != 0 || task.Attempt != 0 || task.PropletID != "" || len(task.Results) != 0 || task.Error != "" || begun || finished {
			return bad("pending with traces of a run")
		}
	case "scheduled":
		if task.State != 1 || task.Attempt != lost+1 || task.PropletID == "" || len(task.Results) != 0 || begun || finished {
			return bad("scheduled, but not as the attempt after the lost ones placed on a proplet")
		}
	case "running":
		if task.State != 2 || task.Attempt != lost+1 || task.PropletID == "" || len(task.Results) != 0 || !begun || finished {
			return bad("running, but not as the started attempt after the lost ones")
		}
	case "completed":
		n, err := strconv.Atoi(task.Inputs[0])
		want := strconv.Quote(strconv.Itoa(n + addend))
		if err != nil || task.State != 3 || task.Attempt != lost+1 || task.PropletID == "" || string(task.Results) != want || task.Error != "" || !finished {
			return bad("completed, but not with result %s of the attempt after the lost ones", want)
		}
	case "failed":
		if !interruptible || lost == 0 || !strings.HasPrefix(task.Error, errInterrupted+"; ") || task.State != 4 || task.Attempt != lost || task.PropletID == "" || len(task.Results) != 0 || !finished {
			return bad("failed, and not after attempts the proplet reported interrupted by its own crash")
		}
	default:
		return bad("state %s is impossible for a valid add task that nobody stopped", task.Status)
	}
	return nil
}

// validLifecycle reports whether h is an event history an add task
// created, started once and never stopped may have: task.created, then
// attempts (task.scheduled, task.started unless the result was recorded
// first), each ended by task.completed or, with interruptible, by
// task.lost and the next attempt, or task.lost and task.failed. A late
// result of a lost attempt may come after its task.lost.
func validLifecycle(h []string, interruptible bool) bool {
	if len(h) == 0 || h[0] != "task.created" {
		return false
	}
	rest, lost := h[1:], false
	for len(rest) > 0 {
		switch rest[0] {
		case "task.scheduled":
			rest = rest[1:]
			if len(rest) > 0 && rest[0] == "task.started" {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				return true // still out on its device
			}
			switch {
			case rest[0] == "task.completed":
				rest = rest[1:]
				return onlyLate(rest, lost)
			case interruptible && rest[0] == "task.lost" && len(rest) > 1 && rest[1] == "task.scheduled":
				rest, lost = rest[1:], true
			case interruptible && rest[0] == "task.lost" && len(rest) > 1 && rest[1] == "task.failed":
				return onlyLate(rest[2:], true)
			default:
				return false
			}
		default:
			return false
		}
	}
	return true // created, never started
}

// onlyLate reports whether rest holds nothing but late results, which
// only a task with a lost attempt may have.
func onlyLate(rest []string, lost bool) bool {
	for _, e := range rest {
		if e != "task.late_result" || !lost {
			return false
		}
	}
	return true
}

// checkLifecycles reads every event and checks each task's history: no
// event lost or recorded twice across the kills.
func checkLifecycles(t *testing.T, c *client.Client, tasks []httpapi.Task, interruptible bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	history := map[string][]string{}
	err := c.Events(ctx, false, func(env events.Envelope) error {
		if env.Aggregate.Kind == events.KindTask {
			history[env.Aggregate.ID] = append(history[env.Aggregate.ID], env.Type)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	var errs []string
	for _, task := range tasks {
		h := history[task.ID]
		if !validLifecycle(h, interruptible) {
			errs = append(errs, fmt.Sprintf("task %s (%s): events %v", task.ID, task.Status, h))
		}
	}
	if len(history) != len(tasks) {
		errs = append(errs, fmt.Sprintf("events of %d tasks, the API shows %d", len(history), len(tasks)))
	}
	if len(errs) > 0 {
		t.Fatalf("invalid task histories:\n%s", strings.Join(errs, "\n"))
	}
}
