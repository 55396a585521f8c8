package engine

import (
	"fmt"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// RemoveDevice forgets a device a user no longer wants listed (DELETE
// /proplets/{id}, Propeller's delete): its liveness, namespace and
// metadata. A device never seen, or removed and not seen since, is not
// found. The service refuses it while tasks are out on the device (as
// Propeller does); the decider cannot see tasks. A device that is still
// connected comes back with its next heartbeat or announcement, as in
// Propeller; to keep it out, revoke it.
type RemoveDevice struct{ ID string }

func (c RemoveDevice) DeviceID() string { return c.ID }

// Seen reports whether the device has shown itself since it was last
// removed: a proplet to list.
func (d Device) Seen() bool { return d.State != DeviceUnknown }

func decideRemove(d Device, c RemoveDevice) ([]events.Event, error) {
	if !d.Seen() {
		return nil, fmt.Errorf("proplet %s: %w", c.ID, domain.ErrNotFound)
	}
	return one(events.DeviceRemoved{}), nil
}

// removed is d after a DeviceRemoved: what the device said of itself is
// gone; its identity stays, and so does how it talks (its own topics, its
// accepts), which its next heartbeat does not repeat.
func (d Device) removed() Device {
	return Device{
		ID: d.ID, FirstSeen: d.FirstSeen, LastChange: d.LastChange, Seq: d.Seq,
		OwnTopics: d.OwnTopics, Accepts: d.Accepts,
		Provisioned: d.Provisioned, KeyHash: d.KeyHash, Legacy: d.Legacy, Revoked: d.Revoked,
	}
}
