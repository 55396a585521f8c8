package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

func newWazero(t testing.TB, opts runtime.Options) *runtime.Wazero {
	t.Helper()
	w, err := runtime.NewWazero(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

type runCase struct {
	name        string
	job         runtime.Job
	want        string
	wantErr     error
	errContains string
}

func checkRun(t *testing.T, rt runtime.Runtime, tc runCase) {
	t.Helper()
	got, err := rt.Run(context.Background(), tc.job)
	if tc.wantErr != nil || tc.errContains != "" {
		if err == nil {
			t.Fatalf("got %q, want an error", got)
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Fatalf("error %v, want %v", err, tc.wantErr)
		}
		if !strings.Contains(err.Error(), tc.errContains) {
			t.Fatalf("error %q does not contain %q", err, tc.errContains)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != tc.want {
		t.Fatalf("got %q, want %q", got, tc.want)
	}
}

func TestWazero_Run(t *testing.T) {
	add, f64, i64 := wasmfixtures.Add(), wasmfixtures.F64(), wasmfixtures.I64()
	fallback := wasmfixtures.Fallback()
	tests := []runCase{
		{name: "add", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"10", "20"}}, want: "30"},
		{name: "add negative", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"-5", " 3 "}}, want: "-2"},
		{name: "add unsigned wraps", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"4294967295", "1"}}, want: "0"},
		{name: "add integral floats", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"1e1", "2.0"}}, want: "12"},
		{name: "add too few inputs", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"1"}},
			wantErr: runtime.ErrInputs, errContains: "add takes 2 params (i32, i32), got 1 inputs"},
		{name: "add not a number", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"1", "ten"}},
			wantErr: runtime.ErrInputs, errContains: `param 1 (i32): "ten" is not a valid i32`},
		{name: "add fraction", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"1.5", "1"}},
			wantErr: runtime.ErrInputs, errContains: "param 0 (i32)"},
		{name: "add out of range", job: runtime.Job{Module: add, Function: "add", Inputs: []string{"4294967296", "1"}},
			wantErr: runtime.ErrInputs},
		{name: "i64", job: runtime.Job{Module: i64, Function: "add64", Inputs: []string{"9007199254740993", "-1"}}, want: "9007199254740992"},
		{name: "f64", job: runtime.Job{Module: f64, Function: "mul", Inputs: []string{"1.5", "2"}}, want: "3"},
		{name: "f32", job: runtime.Job{Module: f64, Function: "mul32", Inputs: []string{"0.5", "3"}}, want: "1.5"},
		{name: "f64 bad", job: runtime.Job{Module: f64, Function: "mul", Inputs: []string{"1", "NaNa"}},
			wantErr: runtime.ErrInputs, errContains: "param 1 (f64)"},
		{name: "fallback to main", job: runtime.Job{Module: fallback, Function: "missing"}, want: "1"},
		{name: "fallback no name", job: runtime.Job{Module: fallback}, want: "1"},
		{name: "named run", job: runtime.Job{Module: fallback, Function: "run"}, want: "2"},
		{name: "no export", job: runtime.Job{Module: add, Function: "sub"},
			wantErr: runtime.ErrNoFunction, errContains: `"sub" (nor main, run or _start); the module exports "add"`},
		{name: "digest given", job: runtime.Job{Module: add, Digest: "add-v1", Function: "add", Inputs: []string{"1", "2"}}, want: "3"},
		{name: "invalid", job: runtime.Job{Module: wasmfixtures.Invalid(), Function: "add"}, wantErr: runtime.ErrInvalidModule},
		{name: "empty", job: runtime.Job{Function: "add"}, wantErr: runtime.ErrInvalidModule},
		{name: "export count bomb", job: runtime.Job{Module: wasmfixtures.ExportBomb()}, wantErr: runtime.ErrInvalidModule,
			errContains: "runtime: invalid wasm module: section export ends inside its exports count"},
		{name: "locals bomb", job: runtime.Job{Module: wasmfixtures.LocalsBomb(), Function: "run"}, wantErr: runtime.ErrInvalidModule,
			errContains: "section code declares 4294967295 locals in function body 0, the bound is 50000"},
	}
	w := newWazero(t, runtime.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkRun(t, w, tc) })
	}
}

func TestWazero_WASI(t *testing.T) {
	upper, echo := wasmfixtures.Uppercase(), wasmfixtures.Echo()
	tests := []runCase{
		{name: "stdin to stdout", job: runtime.Job{Module: upper, Function: "_start", Stdin: []byte("hello, World 42\n")}, want: "HELLO, WORLD 42\n"},
		{name: "no function", job: runtime.Job{Module: upper, Stdin: []byte("abc")}, want: "ABC"},
		{name: "main means _start", job: runtime.Job{Module: upper, Function: "main", Stdin: []byte("x")}, want: "X"},
		{name: "unknown function runs _start", job: runtime.Job{Module: upper, Function: "uppercase"}, want: ""},
		{name: "large stdin", job: runtime.Job{Module: upper, Stdin: []byte(strings.Repeat("ab", 10000))}, want: strings.Repeat("AB", 10000)},
		{name: "args and env", job: runtime.Job{Module: echo, Args: []string{"a", "b c"}, Env: map[string]string{"B": "2", "A": "1"}},
			want: "a\nb c\nA=1\nB=2\n"},
		{name: "inputs as args", job: runtime.Job{Module: echo, Inputs: []string{"x", "y"}}, want: "x\ny\n"},
		{name: "non-zero exit", job: runtime.Job{Module: wasmfixtures.Fail()},
			wantErr: runtime.ErrExit, errContains: "exit code 3: boom: bad input"},
	}
	w := newWazero(t, runtime.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkRun(t, w, tc) })
	}
}

func TestWazero_Memory(t *testing.T) {
	grow, big := wasmfixtures.GrowMemory(), wasmfixtures.BigMemory()
	tests := []runCase{
		{name: "min under default limit", job: runtime.Job{Module: big}, want: "64"},
		{name: "min over job limit", job: runtime.Job{Module: big, MemoryLimitPages: 16},
			wantErr: runtime.ErrMemoryLimit, errContains: "module declares 64 pages (4 MiB) of memory, the limit is 16 pages (1 MiB)"},
		{name: "grow within limit", job: runtime.Job{Module: grow, Function: "grow", Inputs: []string{"10"}, MemoryLimitPages: 16}, want: "1"},
		{name: "grow past limit returns -1", job: runtime.Job{Module: grow, Function: "grow", Inputs: []string{"100"}, MemoryLimitPages: 16}, want: "-1"},
		{name: "grow past limit traps", job: runtime.Job{Module: grow, Function: "grow_or_trap", Inputs: []string{"100"}, MemoryLimitPages: 16},
			errContains: "unreachable"},
		{name: "grow far past default", job: runtime.Job{Module: grow, Function: "grow", Inputs: []string{"60000"}}, want: "-1"},
		{name: "same module, larger limit", job: runtime.Job{Module: grow, Function: "grow_or_trap", Inputs: []string{"100"}, MemoryLimitPages: 256}, want: "1"},
	}
	w := newWazero(t, runtime.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkRun(t, w, tc) })
	}
}

func TestWazero_TimeoutStopsLoop(t *testing.T) {
	w := newWazero(t, runtime.Options{})
	_, err := w.Run(context.Background(), runtime.Job{Module: wasmfixtures.Loop(), Function: "loop", Timeout: 50 * time.Millisecond})
	if !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "timeout after 50ms") {
		t.Fatalf("error %q does not name the timeout", err)
	}
}

func TestWazero_CancelStopsLoop(t *testing.T) {
	errStopped := errors.New("stopped by the manager")
	for _, tc := range []struct {
		name    string
		cancel  func(context.CancelCauseFunc)
		wantErr error
	}{
		{name: "cancel", cancel: func(c context.CancelCauseFunc) { c(nil) }, wantErr: context.Canceled},
		{name: "cancel with cause", cancel: func(c context.CancelCauseFunc) { c(errStopped) }, wantErr: errStopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWazero(t, runtime.Options{})
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := w.Run(ctx, runtime.Job{Module: wasmfixtures.Loop(), Function: "loop"})
				done <- err
			}()
			waitCompiles(t, w, 1)
			tc.cancel(cancel)
			select {
			case err := <-done:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("loop not stopped")
			}
		})
	}
}

func waitCompiles(t *testing.T, w *runtime.Wazero, n uint64) {
	t.Helper()
	natstest.CheckFor(t, 5*time.Second, func() error {
		if got := w.Compiles(); got < n {
			return fmt.Errorf("compiles %d, want %d", got, n)
		}
		return nil
	})
}

// TestWazero_CompileOnce hammers one module from many goroutines: it is
// compiled once and every call gets its own instance.
func TestWazero_CompileOnce(t *testing.T) {
	w := newWazero(t, runtime.Options{})
	add := wasmfixtures.Add()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			got, err := w.Run(context.Background(), runtime.Job{Module: add, Function: "add", Inputs: []string{"1", "2"}})
			if err == nil && got != "3" {
				err = errors.New("got " + got)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := w.Compiles(); n != 1 {
		t.Fatalf("compiled %d times, want 1", n)
	}
	if _, err := w.Run(context.Background(), runtime.Job{Module: add, Function: "add", Inputs: []string{"1", "2"}, MemoryLimitPages: 32}); err != nil {
		t.Fatal(err)
	}
	if n := w.Compiles(); n != 2 {
		t.Fatalf("compiled %d times after a new memory limit, want 2", n)
	}
}

func TestWazero_FailedCompileRetried(t *testing.T) {
	w := newWazero(t, runtime.Options{})
	for range 2 {
		if _, err := w.Run(context.Background(), runtime.Job{Module: wasmfixtures.Invalid()}); !errors.Is(err, runtime.ErrInvalidModule) {
			t.Fatal(err)
		}
	}
	if n := w.Compiles(); n != 2 {
		t.Fatalf("compiles %d, want 2 (failures are not cached)", n)
	}
}

func TestWazero_Eviction(t *testing.T) {
	w := newWazero(t, runtime.Options{MaxModules: 2})
	jobs := []runtime.Job{
		{Module: wasmfixtures.Add(), Function: "add", Inputs: []string{"1", "1"}},
		{Module: wasmfixtures.I64(), Function: "add64", Inputs: []string{"1", "1"}},
		{Module: wasmfixtures.Fallback()},
		{Module: wasmfixtures.Add(), Function: "add", Inputs: []string{"1", "1"}},
	}
	for _, j := range jobs {
		if _, err := w.Run(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Compiles(); n != 4 {
		t.Fatalf("compiles %d, want 4 (add evicted and compiled again)", n)
	}
}

// TestWazero_OutputCap: stdout past the cap is dropped, and the result
// says how much.
func TestWazero_OutputCap(t *testing.T) {
	w := newWazero(t, runtime.Options{MaxOutput: 4})
	got, err := w.Run(context.Background(), runtime.Job{Module: wasmfixtures.Uppercase(), Stdin: []byte("hello world")})
	if err != nil || got != "HELL\n…[truncated 7 bytes]" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestWazero_CacheDir(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		w, err := runtime.NewWazero(context.Background(), runtime.Options{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.Run(context.Background(), runtime.Job{Module: wasmfixtures.Add(), Function: "add", Inputs: []string{"2", "3"}})
		if err != nil || got != "5" {
			t.Fatalf("run %d: %q, %v", i, got, err)
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache dir empty: %v", err)
	}
}

func TestWazero_Closed(t *testing.T) {
	w := newWazero(t, runtime.Options{})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Run(context.Background(), runtime.Job{Module: wasmfixtures.Add()}); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("error %v, want ErrClosed", err)
	}
}

func TestNewWazero_BadLimit(t *testing.T) {
	if _, err := runtime.NewWazero(context.Background(), runtime.Options{MemoryLimitPages: 1 << 20}); err == nil {
		t.Fatal("accepted a limit above 4 GiB")
	}
}
