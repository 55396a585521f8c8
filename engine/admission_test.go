package engine_test

import (
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

func TestAdmit(t *testing.T) {
	const key = "jpd_the-key"
	prov := func(legacy bool, more ...events.Event) engine.Device {
		d := engine.Device{}.Apply(events.Envelope{Aggregate: events.DeviceAggregate("p1"), Seq: 1, Time: t0},
			events.DeviceProvisioned{KeyHash: domain.HashSecret(key), Legacy: legacy})
		for i, ev := range more {
			d = d.Apply(events.Envelope{Aggregate: events.DeviceAggregate("p1"), Seq: uint64(i + 2), Time: t0}, ev)
		}
		return d
	}
	announced := engine.Device{}.Apply(events.Envelope{Aggregate: events.DeviceAggregate("p1"), Seq: 1, Time: t0}, events.DeviceAnnounced{})
	mqtt := engine.Credentials{Username: "p1", Key: key, ClientID: "p1", MQTT: true}
	tests := []struct {
		name    string
		d       engine.Device
		found   bool
		c       engine.Credentials
		open    bool
		want    engine.Admission
		wantErr error
	}{
		{"provisioned device", prov(false), true, mqtt, false, engine.Admission{Device: "p1"}, nil},
		{"legacy device", prov(true), true, mqtt, false, engine.Admission{Device: "p1", Legacy: true}, nil},
		{"over NATS", prov(false), true, engine.Credentials{Username: "p1", Key: key}, false, engine.Admission{Device: "p1"}, nil},
		{"wrong key", prov(false), true, engine.Credentials{Username: "p1", Key: "x", ClientID: "p1", MQTT: true}, true, engine.Admission{}, domain.ErrDenied},
		{"no key", prov(false), true, engine.Credentials{Username: "p1", ClientID: "p1", MQTT: true}, true, engine.Admission{}, domain.ErrDenied},
		{"another client id", prov(false), true, engine.Credentials{Username: "p1", Key: key, ClientID: "p2", MQTT: true}, true, engine.Admission{}, domain.ErrDenied},
		{"revoked", prov(false, events.DeviceRevoked{}), true, mqtt, true, engine.Admission{}, domain.ErrDenied},
		{"reprovisioned", prov(false, events.DeviceRevoked{}, events.DeviceProvisioned{KeyHash: domain.HashSecret(key)}), true, mqtt, false, engine.Admission{Device: "p1"}, nil},
		{"unknown, auth on", engine.Device{}, false, mqtt, false, engine.Admission{}, domain.ErrDenied},
		{"announced but not provisioned, auth on", announced, true, mqtt, false, engine.Admission{}, domain.ErrDenied},
		{"anonymous, auth on", engine.Device{}, false, engine.Credentials{MQTT: true}, false, engine.Admission{}, domain.ErrDenied},
		{"anonymous, dev mode", engine.Device{}, false, engine.Credentials{MQTT: true, ClientID: "x"}, true, engine.Admission{}, nil},
		{"unprovisioned name, dev mode", announced, true, mqtt, true, engine.Admission{}, nil},
		{"anonymous NATS, dev mode", engine.Device{}, false, engine.Credentials{}, true, engine.Admission{}, domain.ErrDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.Admit(tc.d, tc.found, tc.c, tc.open)
			checkErr(t, err, tc.wantErr)
			if got != tc.want {
				t.Fatalf("admission %+v, want %+v", got, tc.want)
			}
		})
	}
}
