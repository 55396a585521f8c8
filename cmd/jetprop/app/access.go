package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// gate is the embedded server's auth callout: it admits devices by their
// provisioning (engine.Admit) and grants each the subjects of its own
// topics (wire.Topics.DeviceAccess). Until the devices read model is
// caught up it refuses, and the device retries.
type gate struct {
	topics  wire.Topics
	open    bool // dev mode
	devices atomic.Pointer[projections.Devices]
}

var errStarting = fmt.Errorf("%w: the server is starting", domain.ErrDenied)

// Authorize implements natsserver.Authorizer.
func (g *gate) Authorize(_ context.Context, c natsserver.Client) (natsserver.Grant, error) {
	devs := g.devices.Load()
	if devs == nil {
		return natsserver.Grant{}, errStarting
	}
	d, found := devs.Get(c.Username)
	adm, err := engine.Admit(d, found, engine.Credentials{Username: c.Username, Key: c.Password, ClientID: c.ClientID, MQTT: c.Type == "mqtt"}, g.open)
	if err != nil {
		return natsserver.Grant{}, err
	}
	if adm.Device == "" {
		pub, sub := g.topics.AnyDeviceAccess()
		return natsserver.Grant{Name: "anonymous", Pub: pub, Sub: sub, MQTT: true}, nil
	}
	pub, sub := g.topics.DeviceAccess(adm.Device, adm.Legacy)
	return natsserver.Grant{Name: deviceUser(adm.Device), Pub: pub, Sub: sub}, nil
}

// deviceUser is the name the broker shows for a device's connections.
func deviceUser(id string) string { return "device:" + id }

// observeRevoked queues, for kickRevoked, a device whose revocation the
// read model just applied (observers must not block).
func (a *App) observeRevoked(env events.Envelope) {
	if env.Type != (events.DeviceRevoked{}).EventType() || a.ns == nil {
		return
	}
	select {
	case a.revoked <- env.Aggregate.ID:
	default:
		a.log.Error("revoked device not disconnected: queue full; it can no longer connect again", "device", env.Aggregate.ID)
	}
}

// kickRevoked closes the connections of revoked devices until ctx is done.
func (a *App) kickRevoked(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-a.revoked:
			n, err := a.ns.Disconnect(deviceUser(id), id)
			if err != nil {
				a.log.Warn("close the connections of a revoked device", "device", id, "err", err)
				continue
			}
			a.log.Info("revoked device disconnected", "device", id, "connections", n)
		}
	}
}

// localDevice returns the id and key a local proplet connects with when
// devices must be provisioned: its own device, provisioned at its first
// start, its key kept beside its data (mode 0600).
func (a *App) localDevice(ctx context.Context, n int, dir string) (id, key string, err error) {
	id = fmt.Sprintf("local-%d", n)
	keyFile := filepath.Join(dir, "device.key")
	if b, err := os.ReadFile(keyFile); err == nil {
		key = strings.TrimSpace(string(b))
		if d, ok := a.devices.Get(id); ok && d.Admits(key) {
			return id, key, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	if d, ok := a.devices.Get(id); ok && d.Provisioned && !d.Revoked {
		if _, err := a.svc.RevokeDevice(ctx, id, "local proplet key lost"); err != nil {
			return "", "", err
		}
	}
	if _, key, err = a.svc.ProvisionDevice(ctx, id, false); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	return id, key, os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
}

// EngineSecretFile, in the data dir, holds the password of the engine's
// NATS user (natsserver.EngineUser), mode 0600: whoever may read the data
// dir, which holds the event log itself, may use the NATS port as the
// engine does (an operator's tools, the end-to-end tests).
const EngineSecretFile = "nats-engine.secret"

// secretFile returns the secret kept in dir/name, creating it (mode 0600)
// the first time.
func secretFile(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	s := domain.NewSecret("")
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}
