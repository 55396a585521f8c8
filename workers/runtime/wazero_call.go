package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// argv0 is the program name a WASI guest sees.
const argv0 = "module.wasm"

// fallbacks are tried in order when the requested export is missing.
var fallbacks = []string{"main", "run", "_start"}

// invoke runs one instance of t: as a WASI command, or by calling an export.
func (w *Wazero) invoke(ctx context.Context, t *tier, job Job) (string, error) {
	stdout, stderr := newCapped(w.opts.MaxOutput), newCapped(w.opts.MaxOutput)
	if isCommand(t.mod, job.Function) {
		return w.runCommand(ctx, t.rt, t.mod, job, stdout, stderr)
	}
	return w.callExport(ctx, t.rt, t.mod, job, stdout, stderr)
}

// isCommand: the module exports _start and the job asks for _start, main,
// nothing, or an export the module does not have.
func isCommand(mod wazero.CompiledModule, fn string) bool {
	exports := mod.ExportedFunctions()
	if _, ok := exports["_start"]; !ok {
		return false
	}
	if fn == "" || fn == "_start" || fn == "main" {
		return true
	}
	_, ok := exports[fn]
	return !ok
}

// runCommand instantiates the module, which runs _start to its exit.
func (w *Wazero) runCommand(ctx context.Context, rt wazero.Runtime, mod wazero.CompiledModule, job Job, stdout, stderr *capped) (string, error) {
	args := job.Args
	if len(args) == 0 {
		args = job.Inputs
	}
	inst, err := rt.InstantiateModule(ctx, mod, w.moduleConfig(job, args, stdout, stderr))
	if inst != nil {
		_ = inst.Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		return "", guestError("_start", err, stderr)
	}
	return output(stdout)
}

// callExport instantiates the module (running _initialize for WASI
// reactors) and calls the export.
func (w *Wazero) callExport(ctx context.Context, rt wazero.Runtime, mod wazero.CompiledModule, job Job, stdout, stderr *capped) (string, error) {
	def, err := pickExport(mod, job.Function)
	if err != nil {
		return "", err
	}
	params, err := parseInputs(def, job.Inputs)
	if err != nil {
		return "", err
	}
	cfg := w.moduleConfig(job, job.Args, stdout, stderr).WithStartFunctions(initializers(mod)...)
	inst, err := rt.InstantiateModule(ctx, mod, cfg)
	if err != nil {
		return "", guestError("_initialize", err, stderr)
	}
	defer inst.Close(context.WithoutCancel(ctx))
	res, err := inst.ExportedFunction(def.ExportNames()[0]).Call(ctx, params...)
	if err != nil {
		return "", guestError(def.ExportNames()[0], err, stderr)
	}
	return formatResult(def.ResultTypes(), res, stdout)
}

// pickExport returns fn, else the first exported fallback.
func pickExport(mod wazero.CompiledModule, fn string) (api.FunctionDefinition, error) {
	exports := mod.ExportedFunctions()
	for _, name := range append([]string{fn}, fallbacks...) {
		if def, ok := exports[name]; ok && name != "" {
			return exportAs(def, name), nil
		}
	}
	names := quoteList(slices.Sorted(maps.Keys(exports)))
	if fn == "" {
		return nil, fmt.Errorf("%w: no function named and none of main, run, _start exported; the module exports %s",
			ErrNoFunction, names)
	}
	return nil, fmt.Errorf("%w: %q (nor main, run or _start); the module exports %s", ErrNoFunction, fn, names)
}

// exportAs makes sure ExportNames()[0] is the name we looked up, as one
// function may be exported under several names.
func exportAs(def api.FunctionDefinition, name string) api.FunctionDefinition {
	if def.ExportNames()[0] == name {
		return def
	}
	return namedDef{def, name}
}

type namedDef struct {
	api.FunctionDefinition
	name string
}

func (d namedDef) ExportNames() []string { return []string{d.name} }

func initializers(mod wazero.CompiledModule) []string {
	if _, ok := mod.ExportedFunctions()["_initialize"]; ok {
		return []string{"_initialize"}
	}
	return nil
}

func (w *Wazero) moduleConfig(job Job, args []string, stdout, stderr *capped) wazero.ModuleConfig {
	cfg := w.base.
		WithArgs(append([]string{argv0}, args...)...).
		WithStdin(bytes.NewReader(job.Stdin)).
		WithStdout(stdout).
		WithStderr(stderr)
	for _, k := range slices.Sorted(maps.Keys(job.Env)) {
		cfg = cfg.WithEnv(k, job.Env[k])
	}
	return cfg
}

// guestError turns a wazero error into ours: a non-zero exit becomes
// ErrExit with the guest's stderr; exit code 0 is success.
func guestError(fn string, err error, stderr *capped) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		if exit.ExitCode() == 0 {
			return nil
		}
		return &ExitError{Code: int(exit.ExitCode()), Stderr: stderr.String()}
	}
	if msg := strings.TrimSpace(stderr.String()); msg != "" {
		return fmt.Errorf("%w: %s: %w (stderr: %s)", ErrTrap, fn, err, msg)
	}
	return fmt.Errorf("%w: %s: %w", ErrTrap, fn, err)
}

// output is what the guest wrote to stdout, truncated at the cap.
func output(stdout *capped) (string, error) {
	return stdout.String(), nil
}

// formatResult renders the first result as a decimal string; an export
// without results yields its stdout.
func formatResult(types []api.ValueType, res []uint64, stdout *capped) (string, error) {
	if len(types) == 0 || len(res) == 0 {
		return output(stdout)
	}
	return formatValue(types[0], res[0]), nil
}

func quoteList(names []string) string {
	if len(names) == 0 {
		return "no functions"
	}
	return `"` + strings.Join(names, `", "`) + `"`
}

// ExitError is a non-zero exit of a WASI command or external process. It
// unwraps to ErrExit.
type ExitError struct {
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exit code %d", e.Code)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Unwrap returns ErrExit.
func (e *ExitError) Unwrap() error { return ErrExit }
