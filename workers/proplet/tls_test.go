package proplet_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/tlstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

func TestConfig_TLS(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*proplet.Config)
		address string // after Validate
		wantErr string
	}{
		{name: "tls without a port gets 8883", edit: func(c *proplet.Config) { c.MQTTAddress = "tls://gw" }, address: "tls://gw:8883"},
		{name: "mqtts without a port gets 8883", edit: func(c *proplet.Config) { c.MQTTAddress = "mqtts://[::1]" }, address: "mqtts://[::1]:8883"},
		{name: "tcp without a port gets 1883", edit: func(c *proplet.Config) { c.MQTTAddress = "tcp://gw" }, address: "tcp://gw:1883"},
		{name: "a port is kept", edit: func(c *proplet.Config) { c.MQTTAddress = "ssl://gw:1883" }, address: "ssl://gw:1883"},
		{name: "files with ssl", edit: func(c *proplet.Config) {
			c.MQTTAddress, c.MQTTCACert, c.MQTTClientCert, c.MQTTClientKey = "ssl://gw:8883", "ca.pem", "d.pem", "d-key.pem"
		}, address: "ssl://gw:8883"},
		{name: "a certificate without its key", edit: func(c *proplet.Config) {
			c.MQTTAddress, c.MQTTClientCert = "tls://gw:8883", "d.pem"
		}, wantErr: "PROPLET_MQTT_TLS_CLIENT_KEY"},
		{name: "a CA for a plain address", edit: func(c *proplet.Config) {
			c.MQTTAddress, c.MQTTCACert = "tcp://gw:1883", "ca.pem"
		}, wantErr: "plain MQTT address"},
		{name: "insecure for a plain address", edit: func(c *proplet.Config) {
			c.MQTTAddress, c.MQTTInsecureSkipVerify = "tcp://gw:1883", true
		}, wantErr: "plain MQTT address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.MQTTAddress != tc.address {
				t.Fatalf("address %q, %v; want %q", c.MQTTAddress, err, tc.address)
			}
		})
	}
}

// startTLSBroker runs nats-server with TLS listeners that require a
// client certificate of pki's CA.
func startTLSBroker(t *testing.T, pki tlstest.PKI) *natsserver.Server {
	t.Helper()
	s, err := natsserver.Start(context.Background(), natsserver.Config{
		Authorize: natstest.OpenDevices,
		DataDir:   t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20,
		Ready: 15 * time.Second, TLS: pki.ServerTLS(t, certs.ClientAuthRequire),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// newTLSManager is newManagerAt over TLS with a client certificate.
func newTLSManager(t *testing.T, url string, tlsc *tls.Config) *manager {
	t.Helper()
	m := &manager{t: t}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("manager-tls").SetTLSConfig(tlsc).
		SetCleanSession(true).SetAutoReconnect(false)
	m.client = paho.NewClient(opts)
	m.await(m.client.Connect())
	m.await(m.client.Subscribe(topics.Prefix()+"/control/proplet/#", 1, m.record))
	t.Cleanup(func() { m.client.Disconnect(0) })
	return m
}

// TestProplet_MutualTLS runs a task over MQTT with TLS, the broker
// requiring client certificates; the proplet reads Propeller's files.
func TestProplet_MutualTLS(t *testing.T) {
	pki := tlstest.New(t, "manager", "proplet-1")
	s := startTLSBroker(t, pki)
	m := newTLSManager(t, s.MQTTURL(), pki.Client(t, "manager"))

	cfg := testConfig(t, s)
	files := pki.Files("proplet-1")
	cfg.MQTTAddress = strings.Replace(s.MQTTURL(), "tls://", "mqtts://", 1)
	cfg.MQTTCACert, cfg.MQTTClientCert, cfg.MQTTClientKey = files.CA, files.Cert, files.Key
	startProplet(t, cfg, m)
	m.start(wire.StartRequest{ID: "t-tls", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"20", "22"}})
	if r, raw := m.waitResult("t-tls"); r.Text() != "42" || r.Failed() {
		t.Fatalf("result %s", raw)
	}

	t.Run("without a client certificate the broker refuses it", func(t *testing.T) {
		cfg := testConfig(t, s)
		cfg.EntityID, cfg.MQTTAddress, cfg.MQTTCACert = "no-cert", s.MQTTURL(), files.CA
		r := launch(t, cfg)
		r.waitLog(t, "connect failed")
		if n := len(m.received(wire.SuffixCreate)); n != 1 {
			t.Fatalf("%d discoveries, want only the first proplet's", n)
		}
	})
	t.Run("a proplet that does not trust the CA does not connect", func(t *testing.T) {
		cfg := testConfig(t, s)
		cfg.EntityID, cfg.MQTTAddress = "distrust", s.MQTTURL()
		cfg.MQTTClientCert, cfg.MQTTClientKey = files.Cert, files.Key // the system's CAs only
		r := launch(t, cfg)
		r.waitLog(t, "connect failed", "certificate")
	})
}
