package engine

import (
	"fmt"
	"reflect"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// DeviceState is a device's liveness.
type DeviceState int

// Device states. A device exists once it announced itself (create) or sent
// a heartbeat with status "alive"; a last will never creates one.
const (
	DeviceUnknown DeviceState = iota
	DeviceAnnounced
	DeviceAlive
	DeviceOffline
)

var deviceStateNames = [...]string{"unknown", "announced", "alive", "offline"}

func (s DeviceState) String() string {
	if int(s) < len(deviceStateNames) {
		return deviceStateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText writes the state's name.
func (s DeviceState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *DeviceState) UnmarshalText(b []byte) error {
	for i, n := range deviceStateNames {
		if n == string(b) {
			*s = DeviceState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown device state %q", b)
}

// Up reports whether tasks may be placed on the device.
func (s DeviceState) Up() bool { return s == DeviceAnnounced || s == DeviceAlive }

// Device is one proplet, folded from its events.
type Device struct {
	ID         string                `json:"id"`
	State      DeviceState           `json:"state"`
	Namespace  string                `json:"namespace,omitempty"`
	Metadata   events.DeviceMetadata `json:"metadata"`
	Announced  bool                  `json:"announced"`
	FirstSeen  time.Time             `json:"first_seen"`
	LastChange time.Time             `json:"last_change"`
	Seq        uint64                `json:"seq"`
}

// Apply folds one event into the device.
func (d Device) Apply(env events.Envelope, ev events.Event) Device {
	if d.Seq == 0 {
		d.ID, d.FirstSeen = env.Aggregate.ID, env.Time
	}
	d.Seq, d.LastChange = env.Seq, env.Time
	switch e := ev.(type) {
	case events.DeviceAnnounced:
		d.State, d.Announced, d.Metadata = DeviceAnnounced, true, e.Metadata
		d.Namespace = e.Namespace
	case events.DeviceAlive:
		d.State = DeviceAlive
		if e.Namespace != "" {
			d.Namespace = e.Namespace
		}
	case events.DeviceOffline:
		d.State = DeviceOffline
	}
	return d
}

// Device commands.
type (
	// Announce records a discovery message.
	Announce struct {
		ID        string
		Namespace string
		Metadata  events.DeviceMetadata
	}
	// Heartbeat records an "alive" message.
	Heartbeat struct {
		ID        string
		Namespace string
	}
	// MarkOffline records a last will or missed heartbeats.
	MarkOffline struct {
		ID     string
		Reason string
	}
)

// DeviceCommand is any of the device commands.
type DeviceCommand interface{ DeviceID() string }

func (c Announce) DeviceID() string    { return c.ID }
func (c Heartbeat) DeviceID() string   { return c.ID }
func (c MarkOffline) DeviceID() string { return c.ID }

// DecideDevice returns the events cmd causes on d. Heartbeats only cause an
// event when they change something.
func DecideDevice(d Device, cmd DeviceCommand) ([]events.Event, error) {
	if err := events.ValidateID(cmd.DeviceID()); err != nil {
		return nil, fmt.Errorf("%w: device id: %v", domain.ErrInvalid, err)
	}
	switch c := cmd.(type) {
	case Announce:
		md := c.Metadata
		if len(md.Tags) == 0 {
			md.Tags = nil // "tags": [] and no tags are the same, in the event as after a replay
		}
		if d.State.Up() && d.Announced && d.Namespace == c.Namespace && reflect.DeepEqual(d.Metadata, md) {
			return nil, nil
		}
		return one(events.DeviceAnnounced{Namespace: c.Namespace, Metadata: md}), nil
	case Heartbeat:
		if d.State == DeviceAlive {
			return nil, nil
		}
		return one(events.DeviceAlive{Namespace: c.Namespace}), nil
	case MarkOffline:
		if !d.State.Up() {
			return nil, nil
		}
		return one(events.DeviceOffline{Reason: c.Reason}), nil
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}

// LastSeq is the sequence of the last event applied.
func (d Device) LastSeq() uint64 { return d.Seq }
