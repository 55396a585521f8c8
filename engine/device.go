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
	OwnTopics  bool                  `json:"own_topics,omitempty"` // listens on its own topics, not Propeller's shared ones
	Accepts    bool                  `json:"accepts,omitempty"`    // answers starts on its own topics with an accept
	FirstSeen  time.Time             `json:"first_seen"`
	LastChange time.Time             `json:"last_change"`
	// Unreachable says why a device that is up cannot receive (it did not
	// accept a start in time, or the broker refused its subscription); such
	// a device is not placeable. Empty: reachable.
	Unreachable      string    `json:"unreachable,omitempty"`
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
	// OfflineByWill: it went offline by its last will (its connection
	// dropped), not by silence; it may come back on another node.
	OfflineByWill bool   `json:"offline_by_will,omitempty"`
	Seq           uint64 `json:"seq"`

	// Identity: set by provisioning (jetprop device add), not by the device.
	Provisioned bool   `json:"provisioned,omitempty"`
	KeyHash     string `json:"key_hash,omitempty"`
	Legacy      bool   `json:"legacy,omitempty"` // may use Propeller's shared topics
	Revoked     bool   `json:"revoked,omitempty"`
}

// AnswersStarts reports whether the device accepts every start it takes
// (a jetprop proplet on its own topics): its starts count once accepted.
func (d Device) AnswersStarts() bool { return d.OwnTopics && d.Accepts }

// Admits reports whether key is the device's current key: it is
// provisioned, not revoked, and key hashes to its key hash.
func (d Device) Admits(key string) bool {
	return d.Provisioned && !d.Revoked && domain.SecretMatches(d.KeyHash, key)
}

// Apply folds one event into the device.
func (d Device) Apply(env events.Envelope, ev events.Event) Device {
	if d.Seq == 0 {
		d.ID, d.FirstSeen = env.Aggregate.ID, env.Time
	}
	d.Seq, d.LastChange = env.Seq, env.Time
	switch e := ev.(type) {
	case events.DeviceAnnounced:
		d.State, d.Announced, d.Metadata, d.OfflineByWill = DeviceAnnounced, true, e.Metadata, false
		d.Namespace, d.OwnTopics, d.Accepts = e.Namespace, e.OwnTopics, e.Accepts && e.OwnTopics
		d.Unreachable, d.UnreachableSince = "", time.Time{}
	case events.DeviceAlive:
		d.State, d.OfflineByWill = DeviceAlive, false
		if e.Namespace != "" {
			d.Namespace = e.Namespace
		}
		if !d.Announced {
			d.OwnTopics = e.OwnTopics
		}
	case events.DeviceOffline:
		d.State, d.Unreachable, d.UnreachableSince = DeviceOffline, "", time.Time{}
		d.OfflineByWill = e.LastWill
	case events.DeviceUnreachable:
		d.Unreachable, d.UnreachableSince = e.Reason, env.Time
	case events.DeviceReachable:
		d.Unreachable, d.UnreachableSince = "", time.Time{}
	case events.DeviceProvisioned:
		d.Provisioned, d.KeyHash, d.Legacy, d.Revoked = true, e.KeyHash, e.Legacy, false
	case events.DeviceRevoked:
		d.Revoked, d.State, d.Unreachable, d.UnreachableSince = true, DeviceOffline, "", time.Time{}
	case events.DeviceRemoved:
		d = d.removed()
	}
	return d
}

// UnreachableRetry is how long a device that did not accept a start stays
// unplaceable while it keeps heartbeating. The engine cannot tell a device
// that cannot receive from a moment when the broker or the engine's own
// connection lost its starts; retrying after a while bounds the cost of
// either mistake (one task delayed by the accept timeout per retry).
const UnreachableRetry = time.Minute

// Device commands.
type (
	// Announce records a discovery message; OwnTopics when it came on the
	// device's own topics, Accepts when it says it answers starts there.
	Announce struct {
		ID        string
		Namespace string
		Metadata  events.DeviceMetadata
		OwnTopics bool
		Accepts   bool
	}
	// Heartbeat records an "alive" message received At. A device marked
	// unreachable at least UnreachableRetry before At is given another
	// chance: it becomes placeable again, and the next start it does not
	// accept marks it unreachable again.
	Heartbeat struct {
		ID        string
		Namespace string
		OwnTopics bool
		At        time.Time
	}
	// MarkOffline records a last will or missed heartbeats.
	MarkOffline struct {
		ID       string
		Reason   string
		LastWill bool // the broker published its last will
	}
	// MarkUnreachable records that a device that is up cannot receive.
	MarkUnreachable struct {
		ID     string
		Reason string
	}
	// MarkReachable records that an unreachable device accepted a start.
	MarkReachable struct{ ID string }
	// ProvisionDevice lets a device connect with the key whose hash it
	// carries (a new key for a revoked device).
	ProvisionDevice struct {
		ID      string
		KeyHash string
		Legacy  bool
	}
	// RevokeDevice cuts a device off.
	RevokeDevice struct {
		ID     string
		Reason string
	}
)

// DeviceCommand is any of the device commands.
type DeviceCommand interface{ DeviceID() string }

func (c Announce) DeviceID() string        { return c.ID }
func (c Heartbeat) DeviceID() string       { return c.ID }
func (c MarkOffline) DeviceID() string     { return c.ID }
func (c MarkUnreachable) DeviceID() string { return c.ID }
func (c MarkReachable) DeviceID() string   { return c.ID }
func (c ProvisionDevice) DeviceID() string { return c.ID }
func (c RevokeDevice) DeviceID() string    { return c.ID }

// DecideDevice returns the events cmd causes on d. Heartbeats only cause an
// event when they change something.
func DecideDevice(d Device, cmd DeviceCommand) ([]events.Event, error) {
	if err := events.ValidateID(cmd.DeviceID()); err != nil {
		return nil, fmt.Errorf("%w: device id: %v", domain.ErrInvalid, err)
	}
	switch c := cmd.(type) {
	case ProvisionDevice:
		return decideProvision(d, c)
	case RevokeDevice:
		if !d.Provisioned {
			return nil, fmt.Errorf("device %s was never provisioned: %w", c.ID, domain.ErrNotFound)
		}
		if d.Revoked {
			return nil, nil
		}
		return one(events.DeviceRevoked{Reason: c.Reason}), nil
	}
	switch cmd.(type) {
	case MarkOffline, MarkUnreachable, MarkReachable, RemoveDevice: // about its connection, or a user's: nothing to refuse
	default:
		if d.Revoked {
			return nil, fmt.Errorf("device %s is revoked: %w", cmd.DeviceID(), domain.ErrInvalidState)
		}
	}
	switch c := cmd.(type) {
	case Announce:
		if err := c.Metadata.Validate(); err != nil {
			return nil, fmt.Errorf("device %s: %w", c.ID, err)
		}
		md := c.Metadata
		if len(md.Tags) == 0 {
			md.Tags = nil // "tags": [] and no tags are the same, in the event as after a replay
		}
		accepts := c.Accepts && c.OwnTopics // accepts are taken on a device's own topics only
		if d.State.Up() && d.Announced && d.Unreachable == "" && d.Namespace == c.Namespace && d.OwnTopics == c.OwnTopics && d.Accepts == accepts && reflect.DeepEqual(d.Metadata, md) {
			return nil, nil
		}
		return one(events.DeviceAnnounced{Namespace: c.Namespace, Metadata: md, OwnTopics: c.OwnTopics, Accepts: accepts}), nil
	case Heartbeat:
		switch {
		case d.State != DeviceAlive:
			return one(events.DeviceAlive{Namespace: c.Namespace, OwnTopics: c.OwnTopics}), nil
		case d.Unreachable != "" && !c.At.IsZero() && c.At.Sub(d.UnreachableSince) >= UnreachableRetry:
			return one(events.DeviceReachable{}), nil
		}
		return nil, nil
	case MarkOffline:
		if !d.State.Up() {
			return nil, nil
		}
		return one(events.DeviceOffline{Reason: c.Reason, LastWill: c.LastWill}), nil
	case MarkUnreachable:
		if c.Reason == "" {
			return nil, fmt.Errorf("%w: device %s unreachable without a reason", domain.ErrInvalid, c.ID)
		}
		if !d.State.Up() || d.Unreachable == c.Reason {
			return nil, nil
		}
		return one(events.DeviceUnreachable{Reason: c.Reason}), nil
	case MarkReachable:
		if d.Unreachable == "" {
			return nil, nil
		}
		return one(events.DeviceReachable{}), nil
	case RemoveDevice:
		return decideRemove(d, c)
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}

func decideProvision(d Device, c ProvisionDevice) ([]events.Event, error) {
	if d.Provisioned && !d.Revoked {
		return nil, fmt.Errorf("device %s is provisioned already (revoke it first to give it a new key): %w", c.ID, domain.ErrExists)
	}
	if len(c.KeyHash) != 64 {
		return nil, fmt.Errorf("%w: device %s: a key hash is 64 hex digits", domain.ErrInvalid, c.ID)
	}
	return one(events.DeviceProvisioned{KeyHash: c.KeyHash, Legacy: c.Legacy}), nil
}

// LastSeq is the sequence of the last event applied.
func (d Device) LastSeq() uint64 { return d.Seq }
