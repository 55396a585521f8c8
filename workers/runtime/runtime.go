package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Defaults.
const (
	// DefaultMemoryLimitPages bounds a module's linear memory when a Job
	// does not say: 4096 pages of 64 KiB = 256 MiB.
	DefaultMemoryLimitPages uint32 = 4096
	// MaxMemoryLimitPages is the most a 32-bit wasm memory can have (4 GiB).
	// A larger limit is refused (ErrMemoryLimit). Wazero gives a guest at
	// most maxAddressablePages of it.
	MaxMemoryLimitPages uint32 = 65536
	// DefaultMaxOutput caps what is kept of a job's stdout (its result) and
	// of its stderr (in the error of a failed run): 512 KiB each. Output past
	// it is dropped and the kept part ends with a marker, "…[truncated N
	// bytes]". Half of a default broker's 1 MiB payload, so a result fits
	// in one MQTT message.
	DefaultMaxOutput = 512 << 10
	// PageSize is the size of a wasm memory page.
	PageSize = 64 << 10
)

// Sentinel errors; Run wraps them with %w, so test with errors.Is.
var (
	// ErrInvalidModule: the bytes are not a module this runtime can compile.
	ErrInvalidModule = errors.New("runtime: invalid wasm module")
	// ErrNoFunction: the module exports neither the requested function nor
	// a fallback (main, run, _start).
	ErrNoFunction = errors.New("runtime: function not exported")
	// ErrInputs: the inputs do not match the export's parameters.
	ErrInputs = errors.New("runtime: bad inputs")
	// ErrMemoryLimit: the module needs more memory than the job allows.
	ErrMemoryLimit = errors.New("runtime: memory limit exceeded")
	// ErrTimeout: the job ran longer than Job.Timeout.
	ErrTimeout = errors.New("runtime: timeout")
	// ErrTrap: the guest trapped: unreachable, an out-of-bounds access, a
	// stack overflow (deep or endless recursion), and the like.
	ErrTrap = errors.New("runtime: wasm trap")
	// ErrExit: a WASI command or external process exited with a non-zero code.
	ErrExit = errors.New("runtime: non-zero exit")
	// ErrClosed: Run was called after Close.
	ErrClosed = errors.New("runtime: closed")
)

// Job is one invocation of a module.
type Job struct {
	// Digest identifies Module for the compile cache; when empty it is the
	// hex sha256 of Module. A caller that sets it must keep it unique per
	// content.
	Digest string
	Module []byte
	// Function is the export to call. For a core module: Function, else
	// main, run, _start. A module exporting _start runs as a WASI command
	// when Function is empty, _start, main, or not exported.
	Function string
	// Inputs are the export's arguments, parsed by parameter type (i32, i64,
	// f32, f64). The external runtime passes them as arguments when Args is
	// empty.
	Inputs []string
	Env    map[string]string
	// Args are the command-line arguments after argv[0] (WASI commands and
	// the external runtime).
	Args  []string
	Stdin []byte
	// Timeout bounds the run; zero means only ctx bounds it.
	Timeout time.Duration
	// MemoryLimitPages bounds linear memory in 64 KiB pages; zero means the
	// runtime's default (DefaultMemoryLimitPages unless configured).
	MemoryLimitPages uint32
}

// Runtime runs jobs. Implementations are safe for concurrent use.
type Runtime interface {
	// Run runs job until it returns, fails, times out or ctx is done.
	Run(ctx context.Context, job Job) (string, error)
	// Close releases the runtime; jobs still running are stopped.
	Close(ctx context.Context) error
}

// Digest returns the hex sha256 of a module, the default Job.Digest.
func Digest(module []byte) string {
	sum := sha256.Sum256(module)
	return hex.EncodeToString(sum[:])
}

func (j *Job) digest() string {
	if j.Digest != "" {
		return j.Digest
	}
	return Digest(j.Module)
}

// checkLimit refuses a memory limit no wasm32 memory can reach: a caller
// asking for more was told something that is not true.
func checkLimit(pages uint32) error {
	if pages > MaxMemoryLimitPages {
		return fmt.Errorf("%w: a limit of %d pages (%d MiB) is above wasm32's maximum of %d pages (%d MiB)",
			ErrMemoryLimit, pages, pages/16, MaxMemoryLimitPages, MaxMemoryLimitPages/16)
	}
	return nil
}

// withTimeout applies Job.Timeout to ctx; the cause ErrTimeout tells a
// timeout from the caller's own cancellation.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, ErrTimeout)
}

// stopError explains why ctx ended: ErrTimeout (with the job's timeout), or
// the caller's cancellation (context.Canceled or DeadlineExceeded).
func stopError(ctx context.Context, timeout time.Duration) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrTimeout) {
		return &timeoutError{after: timeout}
	}
	if cause == nil {
		return context.Canceled
	}
	return cause
}

type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return "runtime: timeout after " + e.after.String() }
func (e *timeoutError) Unwrap() error { return ErrTimeout }
