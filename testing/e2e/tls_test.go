package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/examples"
)

// devOutput is what `jetprop certs dev` printed: the exported variables
// of each section ("The server", "The CLI", "Proplet <id>"), and each
// device's mosquitto example's options.
type devOutput struct {
	env       map[string][]string          // section → NAME=VALUE
	mosquitto map[string]map[string]string // device → option → value
}

func parseDevOutput(t *testing.T, out string) devOutput {
	t.Helper()
	d := devOutput{env: map[string][]string{}, mosquitto: map[string]map[string]string{}}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case line != "" && !strings.HasPrefix(line, " "):
			section, _, _ = strings.Cut(line, " (")
			section = strings.TrimSuffix(section, ":")
		case strings.HasPrefix(trimmed, "export "):
			d.env[section] = append(d.env[section], strings.TrimPrefix(trimmed, "export "))
		case strings.HasPrefix(trimmed, "# or: mosquitto_sub "):
			fields := strings.Fields(strings.TrimPrefix(trimmed, "# or: mosquitto_sub "))
			opts := map[string]string{}
			for i := 0; i+1 < len(fields); i += 2 {
				opts[fields[i]] = fields[i+1]
			}
			d.mosquitto[strings.TrimPrefix(section, "Proplet ")] = opts
		}
	}
	for _, want := range []string{"The server", "The CLI"} {
		if len(d.env[want]) == 0 {
			t.Fatalf("no variables for %q in:\n%s", want, out)
		}
	}
	return d
}

// withPorts moves the default ports of the printed variables to p's.
func withPorts(vars []string, p ports) []string {
	r := strings.NewReplacer(":7070", ":"+strconv.Itoa(p.http), ":1883", ":"+strconv.Itoa(p.mqtt))
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = r.Replace(v)
	}
	return out
}

func lookupVar(vars []string, name string) string {
	for _, v := range vars {
		if k, val, _ := strings.Cut(v, "="); k == name {
			return val
		}
	}
	return ""
}

// TestTLS_DevCertificatesAsPrinted makes certificates with `jetprop certs
// dev` and uses the variables it printed as they are (only the ports
// moved): `jetprop up` with mutual TLS and a local proplet, bin/proplet
// with Propeller's TLS variables, the CLI with JETPROP_CA, and mosquitto
// with --cafile, --cert and --key; without a certificate mosquitto is
// refused.
func TestTLS_DevCertificatesAsPrinted(t *testing.T) {
	skipShort(t)
	jetprop, propletBin := build(t)
	out, err := exec.Command(jetprop, "certs", "dev", "--out", filepath.Join(t.TempDir(), "pki"), "--devices", "edge-1,mosq-1").CombinedOutput()
	if err != nil {
		t.Fatalf("jetprop certs dev: %v\n%s", err, out)
	}
	dev := parseDevOutput(t, string(out))
	p := newPorts(t)

	srvEnv := withPorts(dev.env["The server"], p)
	logPath := logFile(t, "jetprop-tls.log")
	dumpOnFailure(t, "jetprop up", logPath)
	srv := startProc(t, "jetprop-tls", logPath, nil, cleanEnv(srvEnv...), jetprop, "up",
		"--data", t.TempDir(), "--http", "127.0.0.1:"+strconv.Itoa(p.http),
		"--nats-port", strconv.Itoa(p.nats), "--mqtt-port", strconv.Itoa(p.mqtt), "--proplets", "1", "--log-level", "debug")
	t.Cleanup(func() { srv.stop(10 * time.Second) })

	cliEnv := withPorts(dev.env["The CLI"], p)
	pool, err := certs.LoadPool(lookupVar(cliEnv, "JETPROP_CA"))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewTLS(lookupVar(cliEnv, "JETPROP_SERVER"), &tls.Config{RootCAs: pool})
	waitHealthyTLS(t, c, srv)
	waitUp(t, c, 1) // the local proplet, over TLS with the engine's in-memory certificate

	propletEnv := withPorts(dev.env["Proplet edge-1"], p)
	edgeLog := logFile(t, "proplet-edge-1.log")
	dumpOnFailure(t, "proplet edge-1", edgeLog)
	edge := startProc(t, "proplet edge-1", edgeLog, nil,
		cleanEnv(append(propletEnv, "PROPLET_DATA_DIR="+t.TempDir(), "PROPLET_LOG_LEVEL=debug")...), propletBin)
	t.Cleanup(func() { edge.stop(10 * time.Second) })
	waitProplet(t, c, "edge-1", "alive", 30*time.Second)

	t.Run("the CLI runs a task on the device proplet", func(t *testing.T) {
		module := filepath.Join(t.TempDir(), "add.wasm")
		if err := os.WriteFile(module, examples.Add(), 0o600); err != nil {
			t.Fatal(err)
		}
		got := runCLI(t, jetprop, cliEnv, "run", module, "add", "20", "22", "--proplet", "edge-1")
		if got != "42" {
			t.Fatalf("jetprop run printed %q, want 42", got)
		}
	})

	t.Run("mosquitto with a device certificate, and without", func(t *testing.T) {
		m := newMosquitto(t)
		opts := dev.mosquitto["mosq-1"]
		m.host, m.port = opts["-h"], strconv.Itoa(p.mqtt)
		tlsArgs := []string{"--cafile", opts["--cafile"], "--cert", opts["--cert"], "--key", opts["--key"]}
		topics := wire.Topics{Tenant: "jetprop", Channel: "default"}

		m.pub(t, "mosq-1", 1, topics.Topic(wire.SuffixCreate), `{"proplet_id":"mosq-1","metadata":{}}`, tlsArgs...)
		waitProplet(t, c, "mosq-1", "announced", 20*time.Second)

		// A persistent session: subscribe to the starts (mosq-1 speaks on
		// Propeller's shared topics) and leave; the engine sends it a start;
		// come back for it.
		topic := topics.Topic(wire.SuffixStart)
		m.sub(t, append([]string{"-c", "-i", "mosq-1", "-u", "mosq-1", "-q", "1", "-t", topic, "-E"}, tlsArgs...)...)
		module := filepath.Join(t.TempDir(), "add.wasm")
		if err := os.WriteFile(module, examples.Add(), 0o600); err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(runCLI(t, jetprop, cliEnv, "task", "create", "--name", "add", "--file", module, "--inputs", "1,2", "--proplet", "mosq-1"))
		runCLI(t, jetprop, cliEnv, "task", "start", id)
		got := m.sub(t, append([]string{"-c", "-i", "mosq-1", "-u", "mosq-1", "-q", "1", "-t", topic, "-C", "1", "-W", "20"}, tlsArgs...)...)
		if !strings.Contains(string(got), id) {
			t.Fatalf("mosquitto_sub got %q, want the start of %s", got, id)
		}

		noCert := exec.Command(m.pubBin, append(m.common(), "-i", "anon", "-q", "1", "-t", topic, "-m", "x", "--cafile", opts["--cafile"])...)
		out, err := noCert.CombinedOutput()
		if err == nil {
			t.Fatalf("mosquitto_pub without a client certificate was admitted: %s", out)
		}
		t.Logf("mosquitto_pub without a client certificate: %v: %s", err, bytes.TrimSpace(out))
	})
}

// waitHealthyTLS waits until GET /health answers over HTTPS.
func waitHealthyTLS(t *testing.T, c *client.Client, srv *proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Health(ctx)
		cancel()
		switch {
		case err == nil:
			return
		case srv.exited():
			t.Fatalf("jetprop up exited before it was healthy: %v", srv.err)
		case time.Now().After(deadline):
			t.Fatalf("jetprop up not healthy over HTTPS: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a process that is starting; nothing to wait on
	}
}

// runCLI runs a jetprop client command with env and returns its standard
// output, trimmed.
func runCLI(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("jetprop %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String())
}
