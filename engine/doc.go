// Package engine holds jetprop's deciders and the command handler.
//
// A decider is a pair of pure functions: Decide(state, command) returns the
// events a command causes (or an error, or nothing when the command is
// already satisfied), and Apply(state, event) returns the next state. No
// decider reads a clock, draws a random id or iterates a map in an order
// that matters: time and ids come in with commands and envelopes, so a
// replay of a stored history reproduces the same state and decisions.
package engine

import "errors"

// Errors callers branch on (the HTTP API maps them to status codes).
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrInvalidState = errors.New("invalid state for this command")
	ErrInvalid      = errors.New("invalid command")
	ErrNoDevice     = errors.New("no alive proplet to run the task")
	ErrStale        = errors.New("stale: does not apply to the current attempt")
	ErrUpstream     = errors.New("upstream failed")              // a registry the request needed refused it or failed (502)
	ErrUnsupported  = errors.New("not supported by this server") // a use case the service was built without (501)
)
