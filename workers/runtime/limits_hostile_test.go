package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

// hostileCase is a job that asks for, or takes, more than it may. want is
// a prefix of the result and wantSuffix its end; or wantErr (errors.Is)
// and errContains.
type hostileCase struct {
	name        string
	job         runtime.Job
	want        string
	wantSuffix  string
	wantErr     error
	errContains string
}

// checkHostile runs tc, then checks that the runtime still runs a plain
// job: a hostile job changes nothing for the next one.
func checkHostile(t *testing.T, rt runtime.Runtime, tc hostileCase, next runtime.Job, nextWant string) {
	t.Helper()
	got, err := rt.Run(context.Background(), tc.job)
	short := got[:min(len(got), 100)]
	switch {
	case tc.wantErr != nil || tc.errContains != "":
		if err == nil || !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errContains) {
			t.Fatalf("got %q, %.300v; want %v containing %q", short, err, tc.wantErr, tc.errContains)
		}
	case err != nil || !strings.HasPrefix(got, tc.want) || !strings.HasSuffix(got, tc.wantSuffix):
		t.Fatalf("got %q...%q (%d bytes), %.300v; want %q...%q", short, got[max(len(got)-60, 0):], len(got), err, tc.want, tc.wantSuffix)
	}
	if got, err := rt.Run(context.Background(), next); err != nil || got != nextWant {
		t.Fatalf("after the hostile job: %q, %v; want %q", got, err, nextWant)
	}
}

// TestWazero_Hostile: task limits are real in process.
func TestWazero_Hostile(t *testing.T) {
	grow, rec, spew := wasmfixtures.GrowLoop(), wasmfixtures.Recurse(), wasmfixtures.Spew()
	tests := []hostileCase{
		{name: "grow page by page to a 16 MiB cap", job: runtime.Job{Module: grow, Function: "run", MemoryLimitPages: 256}, want: "256", wantSuffix: "256"},
		{name: "grow untouched to the default cap", job: runtime.Job{Module: grow, Function: "grow"}, want: "4096", wantSuffix: "4096"},
		{name: "grow untouched to wasm32's maximum", job: runtime.Job{Module: grow, Function: "grow", MemoryLimitPages: runtime.MaxMemoryLimitPages},
			want: "65535", wantSuffix: "65535"}, // wazero cannot address the last page
		{name: "limit above wasm32", job: runtime.Job{Module: grow, Function: "grow", MemoryLimitPages: runtime.MaxMemoryLimitPages + 1},
			wantErr: runtime.ErrMemoryLimit, errContains: "a limit of 65537 pages (4096 MiB) is above wasm32's maximum of 65536 pages (4096 MiB)"},
		{name: "declared minimum above the limit", job: runtime.Job{Module: wasmfixtures.BigMemory(), MemoryLimitPages: 1},
			wantErr: runtime.ErrMemoryLimit, errContains: "module declares 64 pages (4 MiB) of memory, the limit is 1 pages"},
		{name: "endless recursion", job: runtime.Job{Module: rec, Function: "run"}, wantErr: runtime.ErrTrap, errContains: "run: stack overflow"},
		{name: "endless recursion, wide frames", job: runtime.Job{Module: rec, Function: "wide", Inputs: []string{"1"}},
			wantErr: runtime.ErrTrap, errContains: "wide: stack overflow"},
		{name: "16 MiB on stdout", job: runtime.Job{Module: spew}, want: "xxxx", wantSuffix: "x\n…[truncated 16252928 bytes]"},
		{name: "16 MiB on stderr, exit 1", job: runtime.Job{Module: spew, Function: "stderr"},
			wantErr: runtime.ErrExit, errContains: "x\n…[truncated 16252928 bytes]"},
		{name: "stdout without end", job: runtime.Job{Module: spew, Function: "forever", Timeout: 200 * time.Millisecond},
			wantErr: runtime.ErrTimeout, errContains: "timeout after 200ms"},
		{name: "loop without end", job: runtime.Job{Module: wasmfixtures.Loop(), Function: "loop", Timeout: 100 * time.Millisecond},
			wantErr: runtime.ErrTimeout, errContains: "timeout after 100ms"},
		{name: "trap on failed growth", job: runtime.Job{Module: wasmfixtures.GrowMemory(), Function: "grow_or_trap", Inputs: []string{"100"}, MemoryLimitPages: 16},
			wantErr: runtime.ErrTrap, errContains: "unreachable"},
	}
	w := newWazero(t, runtime.Options{})
	add := runtime.Job{Module: wasmfixtures.Add(), Function: "add", Inputs: []string{"1", "2"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkHostile(t, w, tc, add, "3") })
	}
}

// writeScript writes an executable shell script: an external runtime
// exec'd directly (its #! line runs it), never through sh -c.
func writeScript(t *testing.T, body string) *runtime.External {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runtime.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	x, err := runtime.NewExternal(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestExternal_Hostile: the external runtime gets no shell, a scrubbed
// environment and its own process group, and its output is bounded.
func TestExternal_Hostile(t *testing.T) {
	t.Setenv("PROPLET_API_KEY", "s3cret")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	x := writeScript(t, `case "$1" in *.wasm) shift;; esac
case "$1" in
args) shift; for a in "$@"; do printf '[%s]\n' "$a"; done ;;
env) env | cut -d= -f1 | sort | tr '\n' ' ' ;;
pgid) set -- $(cat /proc/$$/stat); [ "$5" = "$$" ] && echo own-group || echo "shared group $5" ;;
flood) head -c 20000000 /dev/zero | tr '\0' y; head -c 3000000 /dev/zero | tr '\0' e >&2 ;;
*) echo "$1" ;;
esac
`)
	tests := []hostileCase{
		{name: "shell syntax in args stays text", job: runtime.Job{Module: wasmfixtures.Add(), Args: []string{"args", "$(touch " + pwned + ")", "; touch " + pwned, "`id`"}},
			want: "[$(touch " + pwned + ")]\n[; touch " + pwned + "]\n[`id`]\n", wantSuffix: "\n"},
		{name: "scrubbed environment", job: runtime.Job{Module: wasmfixtures.Add(), Args: []string{"env"}, Env: map[string]string{"TASK_VAR": "1"}},
			want: "", wantSuffix: "TASK_VAR "},
		{name: "LD_PRELOAD refused", job: runtime.Job{Module: wasmfixtures.Add(), Args: []string{"env"}, Env: map[string]string{"LD_PRELOAD": "/tmp/evil.so"}},
			wantErr: runtime.ErrInputs, errContains: "env LD_PRELOAD is not allowed with an external runtime"},
		{name: "DYLD_ variables refused", job: runtime.Job{Module: wasmfixtures.Add(), Args: []string{"env"}, Env: map[string]string{"dyld_insert_libraries": "x"}},
			wantErr: runtime.ErrInputs, errContains: "env dyld_insert_libraries is not allowed"},
		{name: "own process group", job: runtime.Job{Module: wasmfixtures.Add(), Args: []string{"pgid"}}, want: "own-group\n", wantSuffix: "own-group\n"},
		{name: "output flood truncated", job: runtime.Job{Module: wasmfixtures.Add(), Args: []string{"flood"}},
			want: "yyyy", wantSuffix: "y\n…[truncated 19475712 bytes]"},
		{name: "memory limit above wasm32", job: runtime.Job{Module: wasmfixtures.Add(), MemoryLimitPages: 1 << 20},
			wantErr: runtime.ErrMemoryLimit, errContains: "above wasm32's maximum"},
	}
	echo := runtime.Job{Module: wasmfixtures.Add(), Args: []string{"still-up"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkHostile(t, x, tc, echo, "still-up\n") })
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("an argument ran as a shell command")
	}
	got, err := x.Run(context.Background(), runtime.Job{Module: wasmfixtures.Add(), Args: []string{"env"}, Env: map[string]string{"TASK_VAR": "1"}})
	if err != nil || strings.Contains(got, "PROPLET_API_KEY") || strings.Contains(got, "AWS_") {
		t.Fatalf("environment %q (%v): the proplet's variables leaked", got, err)
	}
	for _, name := range strings.Fields(got) {
		if name != "TASK_VAR" && name != "PWD" && name != "SHLVL" && name != "_" && !isPassed(name) {
			t.Errorf("variable %s reached the runtime", name)
		}
	}
}

// isPassed: the proplet's variables an external runtime inherits.
func isPassed(name string) bool {
	switch name {
	case "PATH", "HOME", "TMPDIR", "LANG", "LD_LIBRARY_PATH":
		return true
	}
	return false
}

// TestExternal_TimeoutKillsGroup: Job.Timeout kills the runtime and every
// process it started (a child holding stdout open included).
func TestExternal_TimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	x := writeScript(t, "sleep 30 &\necho $! > "+pidFile+"\nwait\n")
	start := time.Now()
	_, err := x.Run(context.Background(), runtime.Job{Module: wasmfixtures.Add(), Timeout: 300 * time.Millisecond})
	if !errors.Is(err, runtime.ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("error %v after %v, want ErrTimeout at once", err, time.Since(start))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the script did not start its child: %v", err)
	}
	pid := strings.TrimSpace(string(b))
	natstest.CheckFor(t, 10*time.Second, func() error {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return nil
		}
		return fmt.Errorf("child %s still running: the process group was not killed", pid)
	})
}
