// Package events holds the event envelope, every jetprop event type, the
// codec, and the event store port with its JetStream and in-memory
// implementations.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind names a type of aggregate; each kind has its own stream.
type Kind string

// The aggregate kinds.
const (
	KindTask     Kind = "task"
	KindDevice   Kind = "dev"
	KindWorkflow Kind = "wf"
	KindChunk    Kind = "chunk"
	KindArtifact Kind = "art"
	KindToken    Kind = "token"
	KindSecret   Kind = "secret"
)

// Kinds lists every kind, in a fixed order.
func Kinds() []Kind {
	return []Kind{KindTask, KindDevice, KindWorkflow, KindChunk, KindArtifact, KindToken, KindSecret}
}

// Stream returns the JetStream stream that holds events of kind k.
func (k Kind) Stream() string {
	switch k {
	case KindTask:
		return "TASKS"
	case KindDevice:
		return "DEVICES"
	case KindWorkflow:
		return "WORKFLOWS"
	case KindChunk:
		return "CHUNKS"
	case KindArtifact:
		return "ARTIFACTS"
	case KindToken:
		return "TOKENS"
	case KindSecret:
		return "SECRETS"
	}
	return "EVT_" + strings.ToUpper(string(k))
}

// SubjectPrefix is the prefix of every event subject.
const SubjectPrefix = "jp.evt."

// Subjects is the wildcard subject of kind k's stream.
func (k Kind) Subjects() string { return SubjectPrefix + string(k) + ".>" }

// Aggregate identifies one event-sourced entity.
type Aggregate struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
}

// TaskAggregate, DeviceAggregate are shorthands.
func TaskAggregate(id string) Aggregate   { return Aggregate{Kind: KindTask, ID: id} }
func DeviceAggregate(id string) Aggregate { return Aggregate{Kind: KindDevice, ID: id} }

// WorkflowAggregate is the aggregate of workflow id.
func WorkflowAggregate(id string) Aggregate { return Aggregate{Kind: KindWorkflow, ID: id} }

// ArtifactAggregate is the aggregate of the artifact called name.
func ArtifactAggregate(name string) Aggregate { return Aggregate{Kind: KindArtifact, ID: name} }

// TokenAggregate is the aggregate of the API token with this id.
func TokenAggregate(id string) Aggregate { return Aggregate{Kind: KindToken, ID: id} }

// SecretAggregate is the aggregate of the secret called name.
func SecretAggregate(name string) Aggregate { return Aggregate{Kind: KindSecret, ID: name} }

// Subject is the NATS subject that holds the aggregate's events.
func (a Aggregate) Subject() string { return SubjectPrefix + string(a.Kind) + "." + a.ID }

func (a Aggregate) String() string { return string(a.Kind) + "/" + a.ID }

// ErrInvalidID reports an id that cannot be part of a subject.
var ErrInvalidID = errors.New("events: invalid id")

// MaxIDLen bounds an aggregate id (ValidateID).
const MaxIDLen = 128

// ValidateID checks that id is a non-empty single subject token of at most
// 128 characters: letters, digits, '-', '_', ':' and '@'.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %q must be 1 to %d characters", ErrInvalidID, id, MaxIDLen)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == ':' || r == '@'
		if !ok {
			return fmt.Errorf("%w: %q contains %q (allowed: letters, digits, - _ : @)", ErrInvalidID, id, r)
		}
	}
	return nil
}

// Validate checks the aggregate's kind and id. Chunk ids are two tokens
// (digest.device) and may hold one dot.
func (a Aggregate) Validate() error {
	if a.Kind == "" {
		return fmt.Errorf("%w: aggregate without kind", ErrInvalidID)
	}
	if a.Kind == KindChunk {
		for _, part := range strings.SplitN(a.ID, ".", 2) {
			if err := ValidateID(part); err != nil {
				return err
			}
		}
		return nil
	}
	return ValidateID(a.ID)
}

// Envelope is one stored event: metadata plus a JSON body. In JetStream the
// ID is the Nats-Msg-Id and the metadata travels in headers.
type Envelope struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Aggregate     Aggregate       `json:"aggregate"`
	Time          time.Time       `json:"time"`
	CausationID   string          `json:"causation_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Version       int             `json:"version"`
	Data          json.RawMessage `json:"data"`
	Seq           uint64          `json:"seq,omitempty"` // stream sequence, set by the store
}

// Event is implemented by every event body.
type Event interface {
	EventType() string
}

// Meta is what a command handler knows about the events it is about to append.
type Meta struct {
	Time          time.Time
	CausationID   string
	CorrelationID string
}

// Wrap builds an envelope for ev with the given id.
func Wrap(agg Aggregate, id string, m Meta, ev Event) (Envelope, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: encode %s: %w", ev.EventType(), err)
	}
	return Envelope{
		ID:            id,
		Type:          ev.EventType(),
		Aggregate:     agg,
		Time:          m.Time.UTC(),
		CausationID:   m.CausationID,
		CorrelationID: m.CorrelationID,
		Version:       SchemaVersion,
		Data:          data,
	}, nil
}

// SchemaVersion is the version written into new envelopes.
const SchemaVersion = 1
