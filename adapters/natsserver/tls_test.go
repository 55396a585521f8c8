package natsserver_test

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/tlstest"
)

func startTLS(t *testing.T, cfg *tls.Config) *natsserver.Server {
	t.Helper()
	s, err := natsserver.Start(context.Background(), natsserver.Config{
		Authorize: natstest.OpenDevices,
		DataDir:   t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20,
		Ready: 15 * time.Second, TLS: cfg,
	})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// natsConnect connects to the NATS port over TCP with tlsc (nil: plain).
func natsConnect(url string, tlsc *tls.Config) error {
	opts := []nats.Option{nats.Timeout(10 * time.Second), nats.NoReconnect()}
	if tlsc != nil {
		opts = append(opts, nats.Secure(tlsc))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	return nc.Flush()
}

// mqttConnect connects a paho client to url with tlsc (nil: none).
func mqttConnect(url, id string, tlsc *tls.Config) error {
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetTLSConfig(tlsc).
		SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return context.DeadlineExceeded
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(0)
	return nil
}

func TestStart_TLS(t *testing.T) {
	pki := tlstest.New(t, "d1")
	for _, tc := range []struct {
		mode       certs.ClientAuth
		noCertOpen bool // a client without a certificate is admitted
	}{
		{certs.ClientAuthOff, true},
		{certs.ClientAuthOptional, true},
		{certs.ClientAuthRequire, false},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			s := startTLS(t, pki.ServerTLS(t, tc.mode))
			if !strings.HasPrefix(s.ClientURL(), "tls://") || !strings.HasPrefix(s.MQTTURL(), "tls://") {
				t.Fatalf("urls %s and %s, want tls://", s.ClientURL(), s.MQTTURL())
			}
			_, js := natstest.Connect(t, s) // in process: no TLS, no certificate
			if _, err := js.AccountInfo(context.Background()); err != nil {
				t.Fatalf("in-process jetstream: %v", err)
			}
			plainMQTT := "tcp://" + s.MQTTAddr()
			for _, c := range []struct {
				name string
				err  error
				ok   bool
			}{
				{"nats with the device's certificate", natsConnect(s.ClientURL(), pki.Client(t, "d1")), true},
				{"nats without a certificate", natsConnect(s.ClientURL(), pki.Client(t, "")), tc.noCertOpen},
				{"nats in plain text", natsConnect(strings.Replace(s.ClientURL(), "tls://", "nats://", 1), nil), false},
				{"nats not trusting the CA", natsConnect(s.ClientURL(), &tls.Config{MinVersion: tls.VersionTLS12}), false},
				{"mqtt with the device's certificate", mqttConnect(s.MQTTURL(), "d1", pki.Client(t, "d1")), true},
				{"mqtt without a certificate", mqttConnect(s.MQTTURL(), "anon", pki.Client(t, "")), tc.noCertOpen},
				{"mqtt in plain text", mqttConnect(plainMQTT, "plain", nil), false},
				{"mqtt not trusting the CA", mqttConnect(s.MQTTURL(), "distrust", &tls.Config{MinVersion: tls.VersionTLS12}), false},
			} {
				if (c.err == nil) != c.ok {
					t.Errorf("%s: %v, want ok=%v", c.name, c.err, c.ok)
				}
			}
		})
	}
}

// BenchmarkMQTTConnect measures a device's connect (TCP, TLS handshake,
// MQTT CONNECT and CONNACK) and disconnect with paho: plain, TLS, and
// mutual TLS with an ECDSA P-256 client certificate. What a fleet
// reconnecting at once after an outage costs the server.
//
//	go test -run '^$' -bench MQTTConnect ./adapters/natsserver/
func BenchmarkMQTTConnect(b *testing.B) {
	pki := tlstest.New(b, "d1")
	for _, bc := range []struct {
		name   string
		server *tls.Config
		client *tls.Config
	}{
		{"plain", nil, nil},
		{"tls", pki.ServerTLS(b, certs.ClientAuthOff), pki.Client(b, "")},
		{"mutual-tls", pki.ServerTLS(b, certs.ClientAuthRequire), pki.Client(b, "d1")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := natsserver.Start(context.Background(), natsserver.Config{
				Authorize: natstest.OpenDevices,
				DataDir:   b.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20, TLS: bc.server,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown()
			for i := 0; b.Loop(); i++ {
				// A fresh client id each time: nats-server refuses a
				// connect while a session of that id is still closing.
				if err := mqttConnect(s.MQTTURL(), "bench-"+strconv.Itoa(i), bc.client); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "connects/s")
		})
	}
}
