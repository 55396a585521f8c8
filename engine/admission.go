package engine

import (
	"fmt"

	"github.com/jetprop/jetprop/engine/domain"
)

// Credentials are what a connecting client presented to the broker.
type Credentials struct {
	Username string // the device id it claims
	Key      string // its key (the MQTT password)
	ClientID string // its MQTT client id
	MQTT     bool   // an MQTT connection (else NATS)
}

// Admission is what a connecting client may be.
type Admission struct {
	// Device is the device it proved to be; "" for an anonymous client
	// admitted in dev mode, which may use every device's topics.
	Device string
	Legacy bool // may use Propeller's shared topics too
}

// Admit decides whether a client may connect as a device. d is the device
// its user name names (found false when there is none). A provisioned
// device must present its key, and over MQTT its own id as client id, so
// nobody else can take its session over. Anybody else is admitted only
// when open (dev mode), only over MQTT, and anonymously.
func Admit(d Device, found bool, c Credentials, open bool) (Admission, error) {
	if c.Username != "" && found && d.Provisioned {
		switch {
		case d.Revoked:
			return Admission{}, fmt.Errorf("%w: device %s is revoked", domain.ErrDenied, d.ID)
		case !d.Admits(c.Key):
			return Admission{}, fmt.Errorf("%w: wrong key for device %s", domain.ErrDenied, d.ID)
		case c.MQTT && c.ClientID != d.ID:
			return Admission{}, fmt.Errorf("%w: device %s must connect with client id %q, not %q", domain.ErrDenied, d.ID, d.ID, c.ClientID)
		}
		return Admission{Device: d.ID, Legacy: d.Legacy}, nil
	}
	switch {
	case !open:
		return Admission{}, fmt.Errorf("%w: %q is not a provisioned device (jetprop device add)", domain.ErrDenied, c.Username)
	case !c.MQTT:
		return Admission{}, fmt.Errorf("%w: the NATS port admits provisioned devices only", domain.ErrDenied)
	}
	return Admission{}, nil
}
