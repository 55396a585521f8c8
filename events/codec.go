package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
)

// ErrUnknownType reports an envelope whose type is not registered.
var ErrUnknownType = errors.New("events: unknown event type")

// Codec maps event type names to Go types.
type Codec struct {
	types map[string]reflect.Type
}

// NewCodec registers samples (pointers or values of event structs) and
// round-trips each through JSON so a bad type fails at start, not at replay.
func NewCodec(samples ...Event) (*Codec, error) {
	r := &Codec{types: make(map[string]reflect.Type, len(samples))}
	for _, s := range samples {
		if err := r.register(s); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Codec) register(s Event) error {
	t := reflect.TypeOf(s)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := s.EventType()
	if prev, ok := r.types[name]; ok {
		return fmt.Errorf("events: type %q registered twice (%s, %s)", name, prev, t)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("events: %q does not encode: %w", name, err)
	}
	v := reflect.New(t).Interface()
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("events: %q does not decode: %w", name, err)
	}
	if back := v.(Event).EventType(); back != name {
		return fmt.Errorf("events: %q decodes as %q", name, back)
	}
	r.types[name] = t
	return nil
}

// Decode returns the typed body of env (a value, not a pointer). An
// envelope it cannot decode comes back as a *DecodeError.
func (r *Codec) Decode(env Envelope) (Event, error) {
	t, ok := r.types[env.Type]
	if !ok {
		return nil, &DecodeError{Envelope: env, Err: fmt.Errorf("%w: %q", ErrUnknownType, env.Type)}
	}
	v := reflect.New(t)
	if err := json.Unmarshal(env.Data, v.Interface()); err != nil {
		return nil, &DecodeError{Envelope: env, Err: err}
	}
	return v.Elem().Interface().(Event), nil
}

// DecodeError is an envelope whose body the codec cannot decode: its type
// is not registered (ErrUnknownType) or its data does not fit the type.
type DecodeError struct {
	Envelope Envelope
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("events: decode %s %s (seq %d): %v", e.Envelope.Type, e.Envelope.ID, e.Envelope.Seq, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Types lists the registered type names, sorted.
func (r *Codec) Types() []string {
	out := make([]string, 0, len(r.types))
	for k := range r.types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
