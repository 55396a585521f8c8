package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

// exports are the `export NAME=VALUE` lines of certs dev's output.
func exports(out string) map[string]string {
	vars := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if kv, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			if _, seen := vars[k]; !seen {
				vars[k] = v
			}
		}
	}
	return vars
}

func TestCLI_CertsDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	jetprop(t.Context(), nil, "", "certs", "dev").fails(t, exitUsage, "--out is required")
	jetprop(t.Context(), nil, "", "certs", "dev", "--out", dir, "--devices", "../x").fails(t, exitError, "letters, digits")

	out := jetprop(t.Context(), nil, "", "certs", "dev", "--out", dir, "--devices", "d1").ok(t)
	vars := exports(out)
	for k, want := range map[string]string{
		"JETPROP_TLS_CERT": filepath.Join(dir, "server.pem"), "JETPROP_TLS_KEY": filepath.Join(dir, "server-key.pem"),
		"JETPROP_TLS_CA": filepath.Join(dir, "ca.pem"), "JETPROP_TLS_CLIENT_AUTH": "require", "JETPROP_CA": filepath.Join(dir, "ca.pem"),
		"JETPROP_SERVER": "https://localhost:7070", "PROPLET_MQTT_ADDRESS": "tls://localhost:1883", "PROPLET_ENTITY_ID": "d1",
		"PROPLET_MQTT_TLS_CA_CERT": filepath.Join(dir, "ca.pem"), "PROPLET_MQTT_TLS_CLIENT_CERT": filepath.Join(dir, "d1.pem"),
		"PROPLET_MQTT_TLS_CLIENT_KEY": filepath.Join(dir, "d1-key.pem"),
	} {
		if vars[k] != want {
			t.Errorf("%s=%q, want %q", k, vars[k], want)
		}
		if strings.HasSuffix(want, ".pem") {
			if _, err := os.Stat(want); err != nil {
				t.Error(err)
			}
		}
	}
	jetprop(t.Context(), nil, "", "certs", "dev", "--out", dir, "--devices", "d1").fails(t, exitError, "d1.pem")
	jetprop(t.Context(), nil, "", "certs", "dev", "--out", dir, "--devices", "d1", "--force").ok(t)
	if out := jetprop(t.Context(), nil, "", "certs", "dev", "--out", dir, "--hosts", "", "--devices", "d2").ok(t); !strings.Contains(out, "kept") {
		t.Errorf("adding a device did not keep the CA:\n%s", out)
	}
}

// TestCLI_UpWithDevCertificates runs `jetprop up` on the variables certs
// dev printed (mutual TLS on, a local proplet) and `jetprop run` with
// JETPROP_CA against its https URL.
func TestCLI_UpWithDevCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole server")
	}
	vars := exports(jetprop(t.Context(), nil, "", "certs", "dev", "--out", t.TempDir(), "--devices", "d1").ok(t))
	server := map[string]string{}
	for _, k := range []string{"JETPROP_TLS_CERT", "JETPROP_TLS_KEY", "JETPROP_TLS_CA", "JETPROP_TLS_CLIENT_AUTH"} {
		server[k] = vars[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- jetpropTo(ctx, &stdout, &stderr, server, "", "up", "--data", t.TempDir(), "--http", "127.0.0.1:0",
			"--nats-port", "-1", "--mqtt-port", "-1", "--proplets", "1", "--log-level", "error")
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("up exited %d: %s", code, stderr.String())
		}
	})
	urls := regexp.MustCompile(`http +(https://\S+)\n +nats +(tls://\S+)\n +mqtt +(tls://\S+)`)
	var client map[string]string
	natstest.CheckFor(t, 2*apitest.Timeout, func() error {
		m := urls.FindStringSubmatch(stdout.String())
		if m == nil {
			return errors.New("not up with TLS yet: " + stdout.String() + stderr.String())
		}
		client = map[string]string{"JETPROP_SERVER": m[1], "JETPROP_CA": vars["JETPROP_CA"]}
		return nil
	})
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if !strings.Contains(jetprop(ctx, client, "", "proplets", "list").stdout, "alive") {
			return errors.New("no proplet alive yet")
		}
		return nil
	})
	if out := jetprop(ctx, client, "", "run", writeModule(t), "add", "1", "2").ok(t); out != "3\n" {
		t.Fatalf("run printed %q", out)
	}
	jetprop(ctx, map[string]string{"JETPROP_SERVER": client["JETPROP_SERVER"]}, "", "proplets", "list").fails(t, exitError, "certificate")
}
