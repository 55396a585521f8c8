package fleetsim

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// Defaults of Config.
const (
	DefaultTenant          = "jetprop"
	DefaultChannel         = "default"
	DefaultIDPrefix        = "sim"
	DefaultHeartbeat       = 10 * time.Second // the proplet's liveliness interval
	DefaultConnectParallel = 256
	DefaultConnectTimeout  = 30 * time.Second
	DefaultKeepAlive       = 30 * time.Second // the proplet's
)

// Config declares a fleet.
type Config struct {
	URL     string // the broker, e.g. tcp://127.0.0.1:1883 (required)
	Devices int    // how many (required unless Credentials are given)
	Tenant  string // default DefaultTenant
	Channel string // default DefaultChannel
	// IDPrefix names the devices <prefix>-00000, <prefix>-00001, ...
	IDPrefix string
	// Credentials are provisioned devices (a server with --auth on): the
	// fleet is these devices, the first Devices of them when Devices > 0.
	Credentials []Credential

	// QoS is the subscription to control/manager/<id>/+ (starts and
	// stops): 0, as the proplet subscribes since it accepts starts (no
	// JetStream consumer per device in the broker), or 1, as it did before
	// (one consumer per device).
	QoS byte
	// NoAccept makes the devices the proplet before accepts: no accept for
	// a start, and a heartbeat "alive" even when the broker refused the
	// subscription. With QoS 1 it reproduces the measurements made before.
	NoAccept bool

	Heartbeat time.Duration // between heartbeats (default 10 s)
	// HeartbeatQoS is 0, as the proplet sends its heartbeats (nothing to
	// time), or 1: the broker acknowledges each, and Fleet.Heartbeats
	// times the acknowledgements.
	HeartbeatQoS byte
	AnswerDelay  time.Duration // from a start to its result (default 0)
	// Echo answers a start with its inputs joined by spaces instead of "ok".
	Echo bool

	// ConnectRate is how many devices start connecting per second; 0
	// for no limit (a connect storm bounded by ConnectParallel).
	ConnectRate float64
	// ConnectParallel bounds the devices between their CONNECT and the
	// end of their setup (subscribe, discovery, first heartbeat).
	ConnectParallel int
	ConnectTimeout  time.Duration // of one CONNECT (default 30 s)
	KeepAlive       time.Duration // MQTT keepalive (default 30 s)

	Logger *slog.Logger // default: discard
}

// Credential is a provisioned device's id and key.
type Credential struct {
	ID  string
	Key string
}

// setDefaults fills the zero fields that have a default.
func (c *Config) setDefaults() {
	c.Tenant = cmp.Or(c.Tenant, DefaultTenant)
	c.Channel = cmp.Or(c.Channel, DefaultChannel)
	c.IDPrefix = cmp.Or(c.IDPrefix, DefaultIDPrefix)
	c.Heartbeat = cmp.Or(c.Heartbeat, DefaultHeartbeat)
	c.ConnectParallel = cmp.Or(c.ConnectParallel, DefaultConnectParallel)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, DefaultConnectTimeout)
	c.KeepAlive = cmp.Or(c.KeepAlive, DefaultKeepAlive)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Devices == 0 {
		c.Devices = len(c.Credentials)
	}
}

// Validate fills the defaults and checks the config.
func (c *Config) Validate() error {
	c.setDefaults()
	if err := (wire.Topics{Tenant: c.Tenant, Channel: c.Channel}).Validate(); err != nil {
		return err
	}
	switch {
	case c.URL == "":
		return errors.New("fleetsim: the broker URL is required")
	case c.Devices <= 0:
		return errors.New("fleetsim: want at least one device")
	case len(c.Credentials) > 0 && c.Devices > len(c.Credentials):
		return fmt.Errorf("fleetsim: %d devices but credentials for %d", c.Devices, len(c.Credentials))
	case c.Heartbeat < 0 || c.AnswerDelay < 0 || c.ConnectRate < 0:
		return errors.New("fleetsim: heartbeat, answer delay and connect rate must not be negative")
	case c.ConnectParallel < 0 || c.ConnectTimeout < 0 || c.KeepAlive < 0:
		return errors.New("fleetsim: connect parallelism and timeouts must not be negative")
	case c.QoS > 1:
		return fmt.Errorf("fleetsim: QoS %d: want 0 or 1", c.QoS)
	case c.HeartbeatQoS > 1:
		return fmt.Errorf("fleetsim: heartbeat QoS %d: want 0 or 1", c.HeartbeatQoS)
	}
	return c.checkIDs()
}

// checkIDs refuses ids that cannot be a topic level.
func (c *Config) checkIDs() error {
	if len(c.Credentials) == 0 {
		return checkID(c.IDPrefix)
	}
	for _, cr := range c.Credentials[:c.Devices] {
		if err := checkID(cr.ID); err != nil {
			return err
		}
	}
	return nil
}

func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, "/+#. \t\r\n") {
		return fmt.Errorf("fleetsim: device id %q: want a topic level without / + # . or spaces", id)
	}
	return nil
}

// IDs returns the fleet's device ids, in connect order.
func (c *Config) IDs() []string {
	ids := make([]string, c.Devices)
	for i := range ids {
		if len(c.Credentials) > 0 {
			ids[i] = c.Credentials[i].ID
		} else {
			ids[i] = fmt.Sprintf("%s-%05d", c.IDPrefix, i)
		}
	}
	return ids
}

// key returns the password of device i ("" without credentials).
func (c *Config) key(i int) string {
	if len(c.Credentials) == 0 {
		return ""
	}
	return c.Credentials[i].Key
}

// ReadCredentials reads provisioned devices, one a line: "<id> <key>",
// "<id>,<key>" or the PROPLET_CLIENT_ID=<id> PROPLET_CLIENT_KEY=<key>
// that `jetprop device add` prints. Blank lines and lines starting with #
// are skipped.
func ReadCredentials(r io.Reader) ([]Credential, error) {
	var out []Credential
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := parseCredential(line)
		if err != nil {
			return nil, fmt.Errorf("fleetsim: credentials line %d: %w", n, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

func parseCredential(line string) (Credential, error) {
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(f) != 2 {
		return Credential{}, errors.New(`want "<id> <key>"`)
	}
	var c Credential
	for i, v := range f {
		id, isID := strings.CutPrefix(v, "PROPLET_CLIENT_ID=")
		key, isKey := strings.CutPrefix(v, "PROPLET_CLIENT_KEY=")
		switch {
		case isID:
			c.ID = id
		case isKey:
			c.Key = key
		case i == 0:
			c.ID = v
		default:
			c.Key = v
		}
	}
	if c.ID == "" || c.Key == "" {
		return Credential{}, errors.New(`want "<id> <key>"`)
	}
	return c, nil
}
