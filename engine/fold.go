package engine

import "github.com/jetprop/jetprop/events"

// Foldable is a state folded from its aggregate's events.
type Foldable[S any] interface {
	Apply(events.Envelope, events.Event) S
	LastSeq() uint64
}

// Fold applies stored envelopes to s in order.
func Fold[S Foldable[S]](codec *events.Codec, s S, envs []events.Envelope) (S, error) {
	evs := make([]events.Event, len(envs))
	for i, env := range envs {
		ev, err := codec.Decode(env)
		if err != nil {
			return s, err
		}
		evs[i] = ev
	}
	// A state that can fold a batch at once (a workflow: its steps copied
	// once, not once per event) does.
	if bulk, ok := any(s).(interface {
		ApplyAll([]events.Envelope, []events.Event) S
	}); ok && len(envs) > 1 {
		return bulk.ApplyAll(envs, evs), nil
	}
	for i, env := range envs {
		s = s.Apply(env, evs[i])
	}
	return s, nil
}
