package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// newTiered is a tiered runtime whose promotions wait for hold to close.
func newTiered(t *testing.T, cacheDir string) (*Wazero, chan struct{}) {
	t.Helper()
	w, err := NewWazero(context.Background(), Options{Tiered: true, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	hold := make(chan struct{})
	w.tiers.hold = hold
	return w, hold
}

func prepare(t *testing.T, w *Wazero, job Job) {
	t.Helper()
	release, err := w.Prepare(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
}

// interpreted reports whether job's module runs on the interpreter now.
func interpreted(t *testing.T, w *Wazero, job Job) bool {
	t.Helper()
	e, err := w.engine(context.Background(), w.limit(job))
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.modules[job.digest()]
	if c == nil || c.cur == nil {
		t.Fatalf("%s not compiled", job.digest())
	}
	return c.cur.rt == e.slow
}

func waitPromoted(t *testing.T, w *Wazero, n uint64) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, func() error {
		if got, failed := w.Promotions(); got < n || failed > 0 {
			return fmt.Errorf("promoted %d (failed %d), want %d", got, failed, n)
		}
		return nil
	})
}

// TestTiers_InterpreterThenCompiler: a prepared module answers from the
// interpreter at once, with the same memory limit and timeout as compiled
// code, and from the optimizing compiler's code once promoted; a Run
// never compiles it again.
func TestTiers_InterpreterThenCompiler(t *testing.T) {
	w, hold := newTiered(t, "")
	add := Job{Module: wasmfixtures.Add(), Function: "add", Inputs: []string{"2", "3"}}
	grow := Job{Module: wasmfixtures.GrowMemory(), Function: "grow_or_trap", Inputs: []string{"100"}, MemoryLimitPages: 16}
	loop := Job{Module: wasmfixtures.Loop(), Function: "loop", Timeout: 50 * time.Millisecond}
	for _, j := range []Job{add, grow, loop} {
		prepare(t, w, j)
	}
	check := func(tier string) {
		for _, j := range []Job{add, grow, loop} {
			if interpreted(t, w, j) != (tier == "interpreter") {
				t.Fatalf("%s: not on the %s", j.Function, tier)
			}
		}
		if got, err := w.Run(context.Background(), add); got != "5" || err != nil {
			t.Fatalf("%s: add = %q, %v", tier, got, err)
		}
		if _, err := w.Run(context.Background(), grow); err == nil {
			t.Fatalf("%s: grew past the memory limit", tier)
		}
		if _, err := w.Run(context.Background(), loop); !errors.Is(err, ErrTimeout) {
			t.Fatalf("%s: loop: %v, want ErrTimeout", tier, err)
		}
	}
	check("interpreter")
	close(hold)
	waitPromoted(t, w, 3)
	check("compiler")
	if got := w.Compiles(); got != 3 {
		t.Fatalf("compiles %d, want 3", got)
	}
}

// TestTiers_RunInFlightKeepsItsTier: a Run that began on the interpreter
// ends there though the module is promoted meanwhile; the next Run uses
// the compiler's code, and the interpreter's is closed by the last Run on
// it.
func TestTiers_RunInFlightKeepsItsTier(t *testing.T) {
	w, hold := newTiered(t, "")
	loop := Job{Module: wasmfixtures.Loop(), Function: "loop"}
	prepare(t, w, loop)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.Run(ctx, loop)
		done <- err
	}()
	e, _ := w.engine(context.Background(), w.limit(loop))
	c := e.modules[loop.digest()]
	slow := c.cur
	natstest.CheckFor(t, 5*time.Second, func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		if slow.runs != 1 {
			return fmt.Errorf("%d runs on the interpreter", slow.runs)
		}
		return nil
	})
	close(hold)
	waitPromoted(t, w, 1)
	if interpreted(t, w, loop) {
		t.Fatal("not promoted")
	}
	sum := Job{Module: loop.Module, Function: "sum", Inputs: []string{"1000"}}
	if got, err := w.Run(context.Background(), sum); got != "499500" || err != nil {
		t.Fatalf("sum on the compiler = %q, %v", got, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run in flight: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if slow.runs != 0 || c.cur == slow {
		t.Fatalf("interpreter tier: %d runs, current %v", slow.runs, c.cur == slow)
	}
}

// TestTiers_Hammer: concurrent Runs across a promotion all answer right
// (run with -race).
func TestTiers_Hammer(t *testing.T) {
	w, hold := newTiered(t, "")
	job := Job{Module: wasmfixtures.Functions(64 << 10), Function: "add", Inputs: []string{"20", "22"}}
	prepare(t, w, job)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if g == 0 && i == 10 {
					close(hold)
				}
				if got, err := w.Run(context.Background(), job); got != "42" || err != nil {
					errs <- fmt.Errorf("run %d: %q, %v", i, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitPromoted(t, w, 1)
}

// TestTiers_DiskCacheSkipsInterpreter: a module the optimizing compiler
// put in the disk cache is compiled by it at once after a restart.
func TestTiers_DiskCacheSkipsInterpreter(t *testing.T) {
	dir := t.TempDir()
	job := Job{Module: wasmfixtures.Add(), Function: "add", Inputs: []string{"1", "2"}}
	w, hold := newTiered(t, dir)
	prepare(t, w, job)
	close(hold)
	waitPromoted(t, w, 1)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, _ := newTiered(t, dir)
	prepare(t, again, job)
	if interpreted(t, again, job) {
		t.Fatal("compiled by the interpreter again after a restart")
	}
	if got, err := again.Run(context.Background(), job); got != "3" || err != nil {
		t.Fatalf("add = %q, %v", got, err)
	}
}
