// Package replaycheck runs recorded event histories through today's
// deciders and reports where they now decide differently: the check behind
// `jetprop events replay --check`, the way Temporal's replayer checks
// workflow code. It reads a store (or a recorded list of envelopes) and
// imports the pure core; it changes nothing.
package replaycheck
