// Package engine holds jetprop's deciders and the command handler.
//
// A decider is a pair of pure functions: Decide(state, command) returns the
// events a command causes (or an error, or nothing when the command is
// already satisfied), and Apply(state, event) returns the next state. No
// decider reads a clock, draws a random id or iterates a map in an order
// that matters: time and ids come in with commands and envelopes, so a
// replay of a stored history reproduces the same state and decisions.
package engine
