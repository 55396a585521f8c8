package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// killGrace is how long a cancelled external process may take to exit
// after it was killed, before its pipes are closed under it.
const killGrace = 2 * time.Second

// passEnv are the proplet's own variables an external runtime inherits; all
// others (notably PROPLET_API_KEY) stay private. LD_LIBRARY_PATH is the
// proplet's own: a runtime installed beside its libraries may need it.
var passEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "LD_LIBRARY_PATH"}

// loaderPrefixes are the variable prefixes of the dynamic loader (glibc's
// and musl's LD_*, macOS's DYLD_*): from a task's env they would load
// native code into the runtime process, outside any sandbox, so a job
// that sets one is refused.
var loaderPrefixes = []string{"LD_", "DYLD_"}

// External runs each job with an external runtime binary (wasmtime, wasmer,
// or a script) as a subprocess:
//
//	<path> <module file> [args...]
//
// where args are Job.Args, or Job.Inputs when Args is empty. The binary is
// executed directly, never through a shell, so arguments reach it verbatim.
// The process gets only Job.Env (loader variables, LD_* and DYLD_*, are
// refused) plus PATH, HOME, TMPDIR, LANG and LD_LIBRARY_PATH from the
// proplet, and Job.Stdin. Its stdout is the result, and its stdout and
// stderr are kept up to DefaultMaxOutput each (the rest is read and
// dropped, marked as truncated); a non-zero exit is an *ExitError carrying
// stderr. It runs in its own process group (Unix), and cancelling the
// context (a stop or a timeout) kills the whole group with SIGKILL.
// Job.MemoryLimitPages is checked against wasm32's maximum but not
// enforced: the external runtime applies its own limits.
type External struct {
	path      string
	tempDir   string
	maxOutput int
}

var _ Runtime = (*External)(nil)

// NewExternal returns a runtime that runs modules with the binary at path
// (looked up in PATH when it has no slash).
func NewExternal(path string) (*External, error) {
	resolved, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("runtime: external runtime %q: %w", path, err)
	}
	return &External{path: resolved, maxOutput: DefaultMaxOutput}, nil
}

// Path is the resolved path of the runtime binary.
func (x *External) Path() string { return x.path }

// Run writes the module to a temp file and runs the binary on it.
func (x *External) Run(ctx context.Context, job Job) (string, error) {
	if err := checkLimit(job.MemoryLimitPages); err != nil {
		return "", err
	}
	if err := checkEnv(job.Env); err != nil {
		return "", err
	}
	file, err := x.writeModule(job.Module)
	if err != nil {
		return "", err
	}
	defer os.Remove(file)
	ctx, cancel := withTimeout(ctx, job.Timeout)
	defer cancel()
	out, err := x.run(ctx, job, file)
	if err != nil && ctx.Err() != nil {
		return "", stopError(ctx, job.Timeout)
	}
	return out, err
}

func (x *External) run(ctx context.Context, job Job, file string) (string, error) {
	stdout, stderr := newCapped(x.maxOutput), newCapped(x.maxOutput)
	cmd := x.command(ctx, job, file)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "", &ExitError{Code: exit.ExitCode(), Stderr: stderr.String()}
	}
	if err != nil {
		return "", fmt.Errorf("runtime: run %s: %w", x.path, err)
	}
	return output(stdout)
}

func (x *External) command(ctx context.Context, job Job, file string) *exec.Cmd {
	args := job.Args
	if len(args) == 0 {
		args = job.Inputs
	}
	cmd := exec.CommandContext(ctx, x.path, append([]string{file}, args...)...)
	cmd.Env = commandEnv(job.Env)
	cmd.Stdin = bytes.NewReader(job.Stdin)
	cmd.WaitDelay = killGrace
	killGroup(cmd)
	return cmd
}

// checkEnv refuses loader variables in a job's env.
func checkEnv(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		for _, p := range loaderPrefixes {
			if strings.HasPrefix(strings.ToUpper(k), p) {
				return fmt.Errorf("%w: env %s is not allowed with an external runtime: it would load native code into the runtime's process", ErrInputs, k)
			}
		}
	}
	return nil
}

func commandEnv(env map[string]string) []string {
	var out []string
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func (x *External) writeModule(module []byte) (string, error) {
	f, err := os.CreateTemp(x.tempDir, "proplet-*.wasm")
	if err != nil {
		return "", fmt.Errorf("runtime: module temp file: %w", err)
	}
	_, err = f.Write(module)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("runtime: write module: %w", err)
	}
	return filepath.Clean(f.Name()), nil
}

// Close does nothing: each Run cleans up after itself.
func (x *External) Close(context.Context) error { return nil }
