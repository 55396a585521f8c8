package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

var runner struct {
	once sync.Once
	path string
	err  error
}

// buildRunner builds testdata/runner once per test binary: a real external
// runtime, running modules with wazero in its own process.
func buildRunner(t *testing.T) string {
	t.Helper()
	runner.once.Do(func() {
		dir, err := os.MkdirTemp("", "jetprop-runner-")
		if err != nil {
			runner.err = err
			return
		}
		runner.path = filepath.Join(dir, "runner")
		out, err := exec.Command("go", "build", "-o", runner.path, "./testdata/runner").CombinedOutput()
		if err != nil {
			runner.err = errors.New(string(out))
		}
	})
	if runner.err != nil {
		t.Fatalf("build runner: %v", runner.err)
	}
	return runner.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if runner.path != "" {
		os.RemoveAll(filepath.Dir(runner.path))
	}
	os.Exit(code)
}

func newExternal(t *testing.T) *runtime.External {
	t.Helper()
	x, err := runtime.NewExternal(buildRunner(t))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestExternal_Run(t *testing.T) {
	fn := func(name string) map[string]string { return map[string]string{"RUNNER_FUNCTION": name} }
	tests := []runCase{
		{name: "add inputs as args", job: runtime.Job{Module: wasmfixtures.Add(), Env: fn("add"), Inputs: []string{"10", "20"}}, want: "30"},
		{name: "args win over inputs", job: runtime.Job{Module: wasmfixtures.Add(), Env: fn("add"), Inputs: []string{"1", "1"}, Args: []string{"2", "3"}}, want: "5"},
		{name: "stdin", job: runtime.Job{Module: wasmfixtures.Uppercase(), Stdin: []byte("edge")}, want: "EDGE"},
		{name: "exit code and stderr", job: runtime.Job{Module: wasmfixtures.Fail()},
			wantErr: runtime.ErrExit, errContains: "exit code 3: runner: exit code 3: boom: bad input"},
		{name: "runner error", job: runtime.Job{Module: wasmfixtures.Add(), Env: fn("add"), Inputs: []string{"x", "1"}},
			wantErr: runtime.ErrExit, errContains: `"x" is not a valid i32`},
	}
	x := newExternal(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkRun(t, x, tc) })
	}
}

// TestExternal_Env: the process gets the job's environment and a few
// harmless variables of the proplet's, never its secrets.
func TestExternal_Env(t *testing.T) {
	t.Setenv("PROPLET_API_KEY", "secret")
	x := newExternal(t)
	got, err := x.Run(context.Background(), runtime.Job{
		Module: wasmfixtures.Echo(), Args: []string{"a"}, Env: map[string]string{"FOO": "bar"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "a\nFOO=bar\n") || strings.Contains(got, "secret") {
		t.Fatalf("environment leaked or missing: %q", got)
	}
}

func TestExternal_TimeoutKills(t *testing.T) {
	x := newExternal(t)
	_, err := x.Run(context.Background(), runtime.Job{
		Module: wasmfixtures.Loop(), Env: map[string]string{"RUNNER_FUNCTION": "loop"}, Timeout: 200 * time.Millisecond,
	})
	if !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
}

// TestExternal_CancelKillsGroup runs a script whose child holds stdout
// open: a cancelled run kills the whole process group, the child with it.
func TestExternal_CancelKillsGroup(t *testing.T) {
	dir := t.TempDir()
	script, pidFile := filepath.Join(dir, "runtime.sh"), filepath.Join(dir, "child.pid")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 30 &\necho $! > "+pidFile+"\necho started\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	x, err := runtime.NewExternal(script)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = x.Run(ctx, runtime.Job{Module: wasmfixtures.Add()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the caller's deadline", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the script did not start its child: %v", err)
	}
	pid := strings.TrimSpace(string(b))
	// The child sleeps 30 s unless killed; dead, it is gone or a zombie
	// waiting to be reaped.
	natstest.CheckFor(t, 10*time.Second, func() error {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return nil
		}
		return fmt.Errorf("child %s still running: the process group was not killed", pid)
	})
}

func TestNewExternal_Missing(t *testing.T) {
	if _, err := runtime.NewExternal(filepath.Join(t.TempDir(), "no-such-runtime")); err == nil {
		t.Fatal("accepted a missing binary")
	}
}
