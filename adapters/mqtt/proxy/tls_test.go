package proxy_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/mqtt/proxy"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/tlstest"
)

// TestProxy_MutualTLS: the proxy connects to a broker that requires client
// certificates with Propeller's files, and is refused without one.
func TestProxy_MutualTLS(t *testing.T) {
	pki := tlstest.New(t, "proxy")
	ns, err := natsserver.Start(context.Background(), natsserver.Config{
		Authorize: natstest.OpenDevices,
		DataDir:   t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20,
		Ready: 15 * time.Second, TLS: pki.ServerTLS(t, certs.ClientAuthRequire),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	start := func(files certs.Client) error {
		p, err := proxy.Start(context.Background(), proxy.Config{
			MQTTAddress: strings.Replace(ns.MQTTURL(), "tls://", "mqtts://", 1), DomainID: tenant, ChannelID: channel,
			Timeout: wait, TLS: files,
		}, slog.New(slog.DiscardHandler))
		if err == nil {
			p.Close()
		}
		return err
	}
	if err := start(pki.Files("proxy")); err != nil {
		t.Fatalf("with the proxy's certificate: %v", err)
	}
	if err := start(pki.Files("")); err == nil {
		t.Fatal("without a client certificate the proxy was admitted")
	}
	if err := start(certs.Client{Cert: pki.Devices[0].Cert, Key: pki.Devices[0].Key}); err == nil {
		t.Fatal("a proxy that does not trust the CA connected")
	}
}

func TestConfig_ValidateTLS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		address string
		files   certs.Client
		wantErr string
	}{
		{"files with tls", "tls://b:8883", certs.Client{CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}, ""},
		{"a certificate without its key", "ssl://b:8883", certs.Client{Cert: "c.pem"}, "needs its key"},
		{"files with a plain address", "tcp://b:1883", certs.Client{CA: "ca.pem"}, "plain MQTT address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := proxy.Config{MQTTAddress: tc.address, DomainID: tenant, ChannelID: channel, TLS: tc.files}
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}
