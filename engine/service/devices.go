package service

import (
	"context"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// DeviceKeyPrefix starts every device key, so a key is recognisable where
// it leaks (a log, a shell history).
const DeviceKeyPrefix = "jpd_"

// ProvisionDevice lets device id connect (a new key for a revoked one) and
// returns the device and its key: the only time the key is shown, since
// only its hash is stored. A legacy device (a Propeller proplet) may use
// Propeller's shared topics.
func (s *Service) ProvisionDevice(ctx context.Context, id string, legacy bool) (engine.Device, string, error) {
	key := domain.NewSecret(DeviceKeyPrefix)
	d, err := s.device(ctx, engine.ProvisionDevice{ID: id, KeyHash: domain.HashSecret(key), Legacy: legacy})
	if err != nil {
		return d, "", err
	}
	return d, key, nil
}

// RevokeDevice cuts device id off: it can no longer connect, and the
// server closes the connection it has.
func (s *Service) RevokeDevice(ctx context.Context, id, reason string) (engine.Device, error) {
	return s.device(ctx, engine.RevokeDevice{ID: id, Reason: reason})
}

// device executes a device command and waits until the read model shows it.
func (s *Service) device(ctx context.Context, cmd engine.DeviceCommand) (engine.Device, error) {
	d, err := s.h.Device(ctx, cmd)
	if err != nil {
		return d, err
	}
	return readBack(ctx, s.readTimeout, s.devices, d.ID, d.Seq, d)
}
