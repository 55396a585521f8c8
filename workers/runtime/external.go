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
	"time"
)

// killGrace is how long a cancelled external process may take to exit
// after it was killed, before its pipes are closed under it.
const killGrace = 2 * time.Second

// passEnv are the proplet's own variables an external runtime inherits; all
// others (notably PROPLET_API_KEY) stay private.
var passEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "LD_LIBRARY_PATH"}

// External runs each job with an external runtime binary (wasmtime, wasmer,
// or a script) as a subprocess:
//
//	<path> <module file> [args...]
//
// where args are Job.Args, or Job.Inputs when Args is empty. The process
// gets Job.Env (plus PATH, HOME, TMPDIR, LANG, LD_LIBRARY_PATH from the
// proplet) and Job.Stdin. Its stdout is the result; a non-zero exit is an
// *ExitError carrying stderr. Cancelling the context (a stop or a timeout)
// kills the whole process group. Job.MemoryLimitPages is not enforced: the
// external runtime applies its own limits.
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
