package timers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/adapters/timers"
	"github.com/jetprop/jetprop/testing/natstest"
)

// recorder collects fired timers; fail makes the handler fail for an id
// that many times first.
type recorder struct {
	mu    sync.Mutex
	fired []timers.Fired
	fail  map[string]int
}

func (r *recorder) handle(_ context.Context, f timers.Fired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fired = append(r.fired, f)
	if r.fail[f.ID] > 0 {
		r.fail[f.ID]--
		return errors.New("boom")
	}
	return nil
}

func (r *recorder) byID(id string) []timers.Fired {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []timers.Fired
	for _, f := range r.fired {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func (r *recorder) waitFor(t *testing.T, id string, n int, timeout time.Duration) []timers.Fired {
	t.Helper()
	natstest.CheckFor(t, timeout, func() error {
		if got := len(r.byID(id)); got < n {
			return fmt.Errorf("%s fired %d times, want %d", id, got, n)
		}
		return nil
	})
	return r.byID(id)
}

func newTimers(t *testing.T, s *natsserver.Server, opts timers.Options) (*timers.Timers, jetstream.JetStream) {
	t.Helper()
	_, js := natstest.Connect(t, s)
	tm, err := timers.New(context.Background(), js, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tm, js
}

// run starts tm.Run with a recorder and stops it at cleanup.
func run(t *testing.T, tm *timers.Timers, r *recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tm.Run(ctx, r.handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func start(t *testing.T) (*timers.Timers, *recorder) {
	tm, _, r := startJS(t)
	return tm, r
}

func startJS(t *testing.T) (*timers.Timers, jetstream.JetStream, *recorder) {
	t.Helper()
	tm, js := newTimers(t, natstest.Start(t), timers.Options{RetryDelay: 100 * time.Millisecond})
	r := &recorder{fail: map[string]int{}}
	run(t, tm, r)
	return tm, js, r
}

func schedule(t *testing.T, tm *timers.Timers, tmr timers.Timer) {
	t.Helper()
	if err := tm.Schedule(context.Background(), tmr); err != nil {
		t.Fatal(err)
	}
}

func TestNew_Idempotent(t *testing.T) {
	s := natstest.Start(t)
	newTimers(t, s, timers.Options{})
	_, js := newTimers(t, s, timers.Options{})
	st, err := js.Stream(context.Background(), timers.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if !st.CachedInfo().Config.AllowMsgSchedules {
		t.Fatal("stream lacks AllowMsgSchedules")
	}
}

func TestTimers_FiresOnceWithPayload(t *testing.T) {
	tm, js, r := startJS(t)
	at := time.Now().Add(300 * time.Millisecond)
	schedule(t, tm, timers.Timer{ID: "t1", At: at, Kind: "retry", Payload: []byte("hello")})
	// A later sentinel shows that t1 did not fire twice meanwhile.
	schedule(t, tm, timers.Timer{ID: "sentinel", At: at.Add(700 * time.Millisecond), Kind: "x"})
	r.waitFor(t, "sentinel", 1, 5*time.Second)

	got := r.byID("t1")
	if len(got) != 1 {
		t.Fatalf("t1 fired %d times, want 1", len(got))
	}
	f := got[0]
	if string(f.Payload) != "hello" || f.Kind != "retry" {
		t.Fatalf("fired %+v", f)
	}
	if !f.Due.Equal(at.UTC()) {
		t.Fatalf("Due = %v, want %v", f.Due, at.UTC())
	}
	if f.FiredAt.Before(at) {
		t.Fatalf("fired early: at %v, due %v", f.FiredAt, at)
	}
	t.Logf("fired %v after due", f.FiredAt.Sub(at))

	// The server purged the one-shot schedule; Run deleted the handled copies.
	st, err := js.Stream(context.Background(), timers.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 2*time.Second, func() error {
		info, err := st.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("stream holds %d messages, want 0", info.State.Msgs)
		}
		return nil
	})
}

func TestTimers_Cancel(t *testing.T) {
	tm, r := start(t)
	at := time.Now().Add(300 * time.Millisecond)
	schedule(t, tm, timers.Timer{ID: "gone", At: at, Kind: "timeout"})
	if err := tm.Cancel(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	if err := tm.Cancel(context.Background(), "never-scheduled"); err != nil {
		t.Fatalf("cancel unknown: %v", err)
	}
	schedule(t, tm, timers.Timer{ID: "sentinel", At: at.Add(500 * time.Millisecond)})
	r.waitFor(t, "sentinel", 1, 5*time.Second)
	if got := r.byID("gone"); len(got) != 0 {
		t.Fatalf("cancelled timer fired: %+v", got)
	}
}

func TestTimers_RescheduleReplaces(t *testing.T) {
	tm, r := start(t)
	first := time.Now().Add(300 * time.Millisecond)
	second := first.Add(600 * time.Millisecond)
	schedule(t, tm, timers.Timer{ID: "r", At: first, Kind: "deadline", Payload: []byte("old")})
	schedule(t, tm, timers.Timer{ID: "r", At: second, Kind: "deadline", Payload: []byte("new")})
	schedule(t, tm, timers.Timer{ID: "sentinel", At: second.Add(600 * time.Millisecond)})
	r.waitFor(t, "sentinel", 1, 5*time.Second)

	got := r.byID("r")
	if len(got) != 1 {
		t.Fatalf("fired %d times, want 1: %+v", len(got), got)
	}
	if string(got[0].Payload) != "new" || !got[0].Due.Equal(second.UTC()) {
		t.Fatalf("fired %+v", got[0])
	}
	if got[0].FiredAt.Before(second) {
		t.Fatalf("fired at %v, before the new time %v", got[0].FiredAt, second)
	}
}

func TestTimers_PastDueFiresPromptly(t *testing.T) {
	tm, r := start(t)
	begin := time.Now()
	schedule(t, tm, timers.Timer{ID: "late", At: begin.Add(-time.Hour), Kind: "retry"})
	got := r.waitFor(t, "late", 1, 3*time.Second)
	t.Logf("past-due timer fired %v after scheduling", got[0].FiredAt.Sub(begin))
}

func TestTimers_HandlerErrorRedelivers(t *testing.T) {
	tm, r := start(t)
	r.mu.Lock()
	r.fail["flaky"] = 2
	r.mu.Unlock()
	schedule(t, tm, timers.Timer{ID: "flaky", At: time.Now(), Kind: "retry", Payload: []byte("p")})
	got := r.waitFor(t, "flaky", 3, 5*time.Second)
	for _, f := range got {
		if string(f.Payload) != "p" {
			t.Fatalf("redelivery %+v", f)
		}
	}
}

// TestTimers_SurviveRestart is the durability requirement: timers stored
// before the server stops fire after it starts again on the same store.
// "missed" falls due while the server is down; "pending" after the restart.
func TestTimers_SurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s1 := natstest.StartDir(t, dir)
	tm1, _ := newTimers(t, s1, timers.Options{})
	now := time.Now()
	missed := now.Add(500 * time.Millisecond)
	pending := now.Add(2 * time.Second)
	schedule(t, tm1, timers.Timer{ID: "missed", At: missed, Kind: "timeout", Payload: []byte("m")})
	schedule(t, tm1, timers.Timer{ID: "pending", At: pending, Kind: "timeout", Payload: []byte("p")})
	s1.Shutdown()

	// Stay down until "missed" is overdue: schedule semantics need the wait.
	time.Sleep(time.Until(missed.Add(500 * time.Millisecond)))
	s2 := natstest.StartDir(t, dir)
	restarted := time.Now()
	tm2, _ := newTimers(t, s2, timers.Options{})
	r := &recorder{fail: map[string]int{}}
	run(t, tm2, r)

	m := r.waitFor(t, "missed", 1, 5*time.Second)[0]
	p := r.waitFor(t, "pending", 1, 5*time.Second)[0]
	if string(m.Payload) != "m" || string(p.Payload) != "p" {
		t.Fatalf("payloads %q %q", m.Payload, p.Payload)
	}
	if p.FiredAt.Before(pending) {
		t.Fatalf("pending fired early: %v < %v", p.FiredAt, pending)
	}
	t.Logf("missed timer fired %v after restart (%v after due); pending fired %v after due",
		m.FiredAt.Sub(restarted), m.FiredAt.Sub(missed), p.FiredAt.Sub(pending))
	if n := len(r.byID("missed")); n != 1 {
		t.Fatalf("missed fired %d times", n)
	}
}

func TestTimers_Cron(t *testing.T) {
	tm, r := start(t)
	ctx := context.Background()
	if err := tm.Cron(ctx, "tick", "* * * * * *", "Europe/Berlin", []byte("p")); err != nil {
		t.Fatal(err)
	}
	got := r.waitFor(t, "tick", 2, 5*time.Second)
	if got[0].Kind != timers.KindCron || got[0].Next.IsZero() || string(got[0].Payload) != "p" {
		t.Fatalf("fired %+v", got[0])
	}
	if err := tm.Cancel(ctx, "tick"); err != nil {
		t.Fatal(err)
	}
	n := len(r.byID("tick"))
	schedule(t, tm, timers.Timer{ID: "sentinel", At: time.Now().Add(2 * time.Second)})
	r.waitFor(t, "sentinel", 1, 5*time.Second)
	// At most one firing already in flight when Cancel ran.
	if after := len(r.byID("tick")); after > n+1 {
		t.Fatalf("cron kept firing after cancel: %d -> %d", n, after)
	}
}

func TestTimers_Validation(t *testing.T) {
	tm, _ := newTimers(t, natstest.Start(t), timers.Options{})
	ctx := context.Background()
	tests := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"empty id", func() error { return tm.Schedule(ctx, timers.Timer{At: time.Now()}) }, timers.ErrInvalidID},
		{"dotted id", func() error { return tm.Schedule(ctx, timers.Timer{ID: "a.b", At: time.Now()}) }, timers.ErrInvalidID},
		{"wildcard cancel", func() error { return tm.Cancel(ctx, ">") }, timers.ErrInvalidID},
		{"bad zone", func() error { return tm.Cron(ctx, "c", "@daily", "Mars/Olympus", nil) }, timers.ErrInvalidTimeZone},
		{"every", func() error { return tm.Cron(ctx, "e", "@every 1h", "", nil) }, nil},
		{"bad cron", func() error { return tm.Cron(ctx, "c", "* * *", "", nil) }, jetstream.ErrSchedulePatternInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestTimers_CronMissedRuns measures the missed-run policy: a per-second
// cron stopped for 3 s fires once for the missed runs, not once per run.
func TestTimers_CronMissedRuns(t *testing.T) {
	dir := t.TempDir()
	s1 := natstest.StartDir(t, dir)
	tm1, _ := newTimers(t, s1, timers.Options{})
	if err := tm1.Cron(context.Background(), "tick", "* * * * * *", "", nil); err != nil {
		t.Fatal(err)
	}
	s1.Shutdown()
	time.Sleep(3 * time.Second) // three runs fall due while down

	s2 := natstest.StartDir(t, dir)
	restarted := time.Now()
	tm2, _ := newTimers(t, s2, timers.Options{})
	r := &recorder{fail: map[string]int{}}
	run(t, tm2, r)
	got := r.waitFor(t, "tick", 2, 5*time.Second)
	var early int
	for _, f := range got {
		if f.FiredAt.Sub(restarted) < 900*time.Millisecond {
			early++
		}
	}
	t.Logf("first firing %v after restart; %d firings within 900ms", got[0].FiredAt.Sub(restarted), early)
	if early > 2 {
		t.Fatalf("missed runs replayed: %d firings right after restart", early)
	}
}
