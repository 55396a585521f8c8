package events

import (
	"fmt"
	"slices"
	"strings"
)

// StreamState is what the store found in a kind's stream when it opened it.
type StreamState struct {
	Stream   string `json:"stream"`
	Created  bool   `json:"created,omitempty"` // it did not exist: created empty
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Messages uint64 `json:"messages"`
}

// StreamProblem is an event stream found damaged when the store opened
// it: its history, or part of it, is gone.
type StreamProblem struct {
	StreamState
	Problem string `json:"problem"` // ProblemMissing or ProblemPurged
	Detail  string `json:"detail"`  // what it means and what to do
}

// The problems of a stream.
const (
	// ProblemMissing is a stream that did not exist while another event
	// stream recorded that it did: it was deleted, and created empty.
	ProblemMissing = "missing"
	// ProblemPurged is a stream whose first messages are gone (its first
	// sequence is above 1): purged, or deleted by hand.
	ProblemPurged = "purged"
)

// metaStreams is the stream metadata key that lists every event stream
// the store opened with it, so a later start can tell a deleted stream
// from one a newer jetprop version adds.
const metaStreams = "jetprop.streams"

func eventStreams() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Stream())
	}
	return strings.Join(names, ",")
}

// streamProblems finds the damaged streams among what the store found.
// known lists the streams the existing ones were opened with.
func streamProblems(states []StreamState, known []string) []StreamProblem {
	var out []StreamProblem
	for _, s := range states {
		switch {
		case s.Created && slices.Contains(known, s.Stream):
			out = append(out, StreamProblem{StreamState: s, Problem: ProblemMissing, Detail: fmt.Sprintf(
				"stream %s did not exist at start although the other event streams were opened with it: it was deleted, "+
					"and its history with it; it was created empty. If that was not intended, stop jetprop and restore "+
					"the data directory from a backup", s.Stream)})
		case s.FirstSeq > 1 && s.Messages == 0:
			out = append(out, StreamProblem{StreamState: s, Problem: ProblemPurged, Detail: fmt.Sprintf(
				"stream %s holds none of the %d messages it stored: every event was purged or deleted, so the read "+
					"models of its aggregates start empty. If that was not intended, stop jetprop and restore the data "+
					"directory from a backup", s.Stream, s.LastSeq)})
		case s.FirstSeq > 1:
			out = append(out, StreamProblem{StreamState: s, Problem: ProblemPurged, Detail: fmt.Sprintf(
				"stream %s starts at sequence %d: messages 1 to %d were purged or deleted, so aggregates whose first "+
					"events went with them fold from what is left. If that was not intended, stop jetprop and restore "+
					"the data directory from a backup", s.Stream, s.FirstSeq, s.FirstSeq-1)})
		}
	}
	return out
}
