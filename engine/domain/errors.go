package domain

import (
	"errors"
	"fmt"
)

// Conditions callers branch on with errors.Is (the HTTP API maps them to
// status codes: 404, 409, 409, 400, 409, —, 502, 501, 401, 403, 409, 400, 413,
// 503, 503, 422).
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrInvalidState = errors.New("invalid state for this command")
	ErrInvalid      = errors.New("invalid command")
	ErrNoDevice     = errors.New("no alive proplet to run the task")
	ErrStale        = errors.New("stale: does not apply to the current attempt")
	ErrUpstream     = errors.New("upstream failed")              // a registry the request needed refused it or failed (502)
	ErrUnsupported  = errors.New("not supported by this server") // a use case the service was built without (501)
	// ErrQuarantined refuses a command to an aggregate with a stored
	// message that cannot be read (409): it stays refused until an
	// operator removes or repairs the message and restarts the server.
	ErrQuarantined = errors.New("quarantined: a stored event cannot be read")

	// ErrUnauthenticated is a request without valid credentials: no token,
	// a malformed one, or one that is unknown or revoked (401).
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrForbidden is an authenticated request whose role is too weak for
	// what it asks (403).
	ErrForbidden = errors.New("forbidden")

	ErrNotWasm  = errors.New("not a wasm module")
	ErrTooLarge = errors.New("module too large")
	// ErrModuleNotFound is a module that is not stored; it is an
	// ErrNotFound.
	ErrModuleNotFound = fmt.Errorf("module %w", ErrNotFound)
	// ErrBadDigest is a string that is not "sha256:" and 64 lower-case hex
	// digits.
	ErrBadDigest = errors.New("not a sha256 digest")

	// ErrUnavailable is a request the server cannot serve now but soon
	// may: the event store is electing a leader or cannot be reached, or a
	// read model did not catch up in time (503 with Retry-After). Reads
	// and creates with an idempotency key are safe to send again.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrBehind is a write that was stored but that the read model did
	// not show in time; it is an ErrUnavailable. The write stands: a
	// create that gets it has created.
	ErrBehind = fmt.Errorf("read model behind: %w", ErrUnavailable)
	// ErrKeyReused is an idempotency key sent again with a different
	// request than the one that created its aggregate (422).
	ErrKeyReused = errors.New("idempotency key reused with a different request")
	// ErrTimeout is a synchronous call (an invocation) whose answer did
	// not come in time (504).
	ErrTimeout = errors.New("timed out")
)

// ErrDenied is a client whose credentials do not admit it (401 on the API;
// a refused connection on the broker).
var ErrDenied = errors.New("access denied")
