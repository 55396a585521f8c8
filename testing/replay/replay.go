// Package replay records event histories, keeps them as JSONL (one
// envelope a line) and replays them through the engine's Apply functions,
// so a test can check that a stored history folds to the states the
// command handler returned. It also holds a step-able clock and a counting
// id source that make a handler deterministic.
package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// ErrOrder reports a history in which an aggregate's events are not in
// increasing sequence order.
var ErrOrder = errors.New("replay: events out of order")

// Record returns every event of the given kinds (all kinds when none are
// given) stored in store, kind by kind in the order given, each kind in
// sequence order.
func Record(ctx context.Context, store events.Store, kinds ...events.Kind) ([]events.Envelope, error) {
	if len(kinds) == 0 {
		kinds = events.Kinds()
	}
	var out []events.Envelope
	for _, k := range kinds {
		err := store.Replay(ctx, k, 1, func(e events.Envelope) error {
			out = append(out, e)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("replay: record %s: %w", k.Stream(), err)
		}
	}
	return out, nil
}

// WriteJSONL writes one JSON envelope a line.
func WriteJSONL(w io.Writer, envs []events.Envelope) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range envs {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("replay: write event %s: %w", e.ID, err)
		}
	}
	return nil
}

// ReadJSONL reads what WriteJSONL wrote. Blank lines are skipped; any other
// line must hold one envelope.
func ReadJSONL(r io.Reader) ([]events.Envelope, error) {
	br := bufio.NewReader(r)
	var out []events.Envelope
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var e events.Envelope
			if jerr := json.Unmarshal(line, &e); jerr != nil {
				return out, fmt.Errorf("replay: line %d: %w", n, jerr)
			}
			out = append(out, e)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("replay: line %d: %w", n, err)
		}
	}
}

// ReplayTasks folds the task events in envs into one state per task id
// (deleted tasks included, with Deleted set).
func ReplayTasks(codec *events.Codec, envs []events.Envelope) (map[string]engine.Task, error) {
	return fold[engine.Task](codec, events.KindTask, envs)
}

// ReplayDevices folds the device events in envs into one state per device id.
func ReplayDevices(codec *events.Codec, envs []events.Envelope) (map[string]engine.Device, error) {
	return fold[engine.Device](codec, events.KindDevice, envs)
}

type state[S any] interface {
	Apply(events.Envelope, events.Event) S
	LastSeq() uint64
}

func fold[S state[S]](codec *events.Codec, kind events.Kind, envs []events.Envelope) (map[string]S, error) {
	byID := map[string][]events.Envelope{}
	var order []string
	for _, e := range envs {
		if e.Aggregate.Kind != kind {
			continue
		}
		prev, seen := byID[e.Aggregate.ID]
		if !seen {
			order = append(order, e.Aggregate.ID)
		}
		if last := events.LastSeqOf(prev); seen && e.Seq <= last {
			return nil, fmt.Errorf("%w: %s event %s has sequence %d after %d", ErrOrder, e.Aggregate, e.ID, e.Seq, last)
		}
		byID[e.Aggregate.ID] = append(prev, e)
	}
	out := make(map[string]S, len(byID))
	for _, id := range order {
		var zero S
		s, err := engine.Fold(codec, zero, byID[id])
		if err != nil {
			return nil, fmt.Errorf("replay: %s/%s: %w", kind, id, err)
		}
		out[id] = s
	}
	return out, nil
}

// ReplayWorkflows folds the workflow events in envs into one state per
// workflow id.
func ReplayWorkflows(codec *events.Codec, envs []events.Envelope) (map[string]engine.Workflow, error) {
	return fold[engine.Workflow](codec, events.KindWorkflow, envs)
}
