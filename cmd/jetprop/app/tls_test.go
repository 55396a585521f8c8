package app_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/internal/propletcmd"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/tlstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// tlsConfig is testConfig with TLS on every listener and client
// certificates of pki's CA required on NATS and MQTT.
func tlsConfig(t testing.TB, pki tlstest.PKI, proplets int) app.Config {
	cfg := testConfig(t.TempDir(), proplets)
	cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = pki.Server, pki.ServerKey, pki.CA
	return cfg
}

// runAdd runs add(a, b) through the API, on proplet when not empty, and
// returns the result.
func runAdd(t *testing.T, c *client.Client, proplet, a, b string) httpapi.Results {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{a, b}, PropletID: proplet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	r, err := c.Results(ctx, task.ID, 20*time.Second)
	if err != nil || !r.Terminal() {
		t.Fatalf("results of %s: %+v, %v", task.ID, r, err)
	}
	return r
}

// TestApp_MutualTLS: HTTPS API, NATS and MQTT over TLS with client
// certificates required. The local proplet connects with the certificate
// the engine signs in memory; a device proplet, configured through
// Propeller's variables, with its own.
func TestApp_MutualTLS(t *testing.T) {
	pki := tlstest.New(t, "edge-1")
	a := startApp(t, tlsConfig(t, pki, 1))
	for _, u := range []string{a.HTTPURL(), a.NATSURL(), a.MQTTURL()} {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "tls://") {
			t.Fatalf("%s is not a TLS URL", u)
		}
	}
	waitDevices(t, a, 1)
	c := client.NewTLS(a.HTTPURL(), pki.Client(t, ""))
	if r := runAdd(t, c, "", "1", "2"); string(r.Results) != `"3"` {
		t.Fatalf("on the local proplet: %+v", r)
	}

	runPropletCmd(t, map[string]string{
		"PROPLET_MQTT_ADDRESS": a.MQTTURL(), "PROPLET_TENANT_ID": "t1", "PROPLET_CHANNEL_ID": "c1",
		"PROPLET_ENTITY_ID": "edge-1", "PROPLET_DATA_DIR": t.TempDir(), "PROPLET_MQTT_QOS": "1",
		"PROPLET_MQTT_TLS_CA_CERT": pki.CA, "PROPLET_MQTT_TLS_CLIENT_CERT": pki.Devices[0].Cert, "PROPLET_MQTT_TLS_CLIENT_KEY": pki.Devices[0].Key,
	})
	waitDevices(t, a, 2)
	if r := runAdd(t, c, "edge-1", "40", "2"); string(r.Results) != `"42"` {
		t.Fatalf("on the device proplet: %+v", r)
	}

	t.Run("the event stream over HTTPS", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n := 0
		if err := c.EventsFrom(ctx, 0, false, func(events.Envelope) error { n++; return nil }); err != nil || n == 0 {
			t.Fatalf("%d events, %v", n, err)
		}
	})
	t.Run("plain HTTP and untrusting clients are refused", func(t *testing.T) {
		resp, err := http.Get(strings.Replace(a.HTTPURL(), "https://", "http://", 1) + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("plain HTTP: %s", resp.Status)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = client.NewTLS(a.HTTPURL(), &tls.Config{MinVersion: tls.VersionTLS12}).Health(ctx)
		if _, ok := errors.AsType[*tls.CertificateVerificationError](err); !ok {
			t.Fatalf("a client without the CA: %v, want a certificate verification error", err)
		}
	})
}

// runPropletCmd runs the proplet command with env as its environment
// until the test ends.
func runPropletCmd(t *testing.T, env map[string]string) {
	t.Helper()
	var stderr io.Writer = io.Discard
	if os.Getenv("JETPROP_TEST_LOG") != "" {
		stderr = os.Stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- propletcmd.Main(ctx, nil, stderr, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proplet: %v", err)
		}
	})
}

// TestApp_TLSExternalNATS: the engine and a local proplet connect to an
// external nats-server that requires client certificates, with --nats-ca,
// --nats-cert and --nats-key.
func TestApp_TLSExternalNATS(t *testing.T) {
	pki := tlstest.New(t, "engine")
	ns, err := natsserver.Start(context.Background(), natsserver.Config{
		DataDir: t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20,
		Ready: 15 * time.Second, TLS: pki.ServerTLS(t, certs.ClientAuthRequire), Authorize: natstest.OpenDevices,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	cfg := testConfig(t.TempDir(), 1)
	cfg.NATSURL, cfg.MQTTURL = ns.EngineURL(), ns.EngineMQTTURL()
	cfg.NATSCA, cfg.NATSCert, cfg.NATSKey = pki.CA, pki.Devices[0].Cert, pki.Devices[0].Key
	a := startApp(t, cfg)
	waitDevices(t, a, 1)
	if r := runAdd(t, client.New(a.HTTPURL(), nil), "", "2", "3"); string(r.Results) != `"5"` {
		t.Fatalf("result %+v", r)
	}
}

func TestConfig_ValidateTLS(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*app.Config)
		wantErr string
	}{
		{"cert and key", func(c *app.Config) { c.TLSCert, c.TLSKey = "s.pem", "s-key.pem" }, ""},
		{"mutual TLS", func(c *app.Config) { c.TLSCert, c.TLSKey, c.TLSCA = "s.pem", "s-key.pem", "ca.pem" }, ""},
		{"optional", func(c *app.Config) {
			c.TLSCert, c.TLSKey, c.TLSCA, c.TLSClientAuth = "s.pem", "s-key.pem", "ca.pem", "optional"
		}, ""},
		{"cert without key", func(c *app.Config) { c.TLSCert = "s.pem" }, "--tls-cert and --tls-key go together"},
		{"CA without cert", func(c *app.Config) { c.TLSCA = "ca.pem" }, "need --tls-cert"},
		{"require without CA", func(c *app.Config) { c.TLSCert, c.TLSKey, c.TLSClientAuth = "s.pem", "k.pem", "require" }, "needs --tls-ca"},
		{"CA with auth off", func(c *app.Config) {
			c.TLSCert, c.TLSKey, c.TLSCA, c.TLSClientAuth = "s.pem", "k.pem", "ca.pem", "off"
		}, "verify nothing"},
		{"unknown mode", func(c *app.Config) { c.TLSCert, c.TLSKey, c.TLSClientAuth = "s.pem", "k.pem", "always" }, `--tls-client-auth "always"`},
		{"nats files without --nats-url", func(c *app.Config) { c.NATSCA = "ca.pem" }, "for the server given by --nats-url"},
		{"nats cert without key", func(c *app.Config) {
			c.NATSURL, c.MQTTURL, c.NATSCert = "tls://n:4222", "tls://n:1883", "e.pem"
		}, "--nats-cert and --nats-key"},
		{"tls-ca with --nats-url", func(c *app.Config) {
			c.NATSURL, c.MQTTURL, c.TLSCert, c.TLSKey, c.TLSCA = "tls://n:4222", "tls://n:1883", "s.pem", "k.pem", "ca.pem"
		}, "has its own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("/tmp/x", 0)
			tc.edit(&c)
			err := c.Validate()
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
