// Package engine is jetprop's pure core: the deciders and folds of every
// aggregate (task, device, workflow, artifact, module transfer, API token,
// secret), the ${secret:NAME} references of task environments,
// placement, the workflow spec and its planner, and the workflow process
// manager's decisions (Reconcile, Fire).
//
// A decider is a pair of pure functions: Decide(state, command) returns the
// events a command causes (or an error, or nothing when the command is
// already satisfied), and Apply(state, event) returns the next state. No
// function here reads a clock, draws a random id, iterates a map in an
// order that matters, takes a context or starts a goroutine: time and ids
// come in with commands and envelopes, so a replay of a stored history
// reproduces the same state and decisions, and the tests need no server.
//
// The application layer that runs the core against the store — the command
// handler, the services, the process manager's runner and liveness — is
// package engine/service; the replay checker is engine/replaycheck; the
// vocabulary every layer shares (sentinel errors, digests, the wasm header)
// is engine/domain.
package engine
