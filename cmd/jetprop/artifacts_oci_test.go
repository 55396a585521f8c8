package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/registrytest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func sha(b []byte) string {
	return domain.DigestOf(b)
}

// withImporter gives the stack the server's OCI importer.
func withImporter(modules *artifacts.Store) (service.Importer, error) {
	return app.NewImporter(modules, service.ImportOptions{}, nil, slog.New(slog.DiscardHandler))
}

// pushOCI stores b in the registry as path and returns the manifest digest.
func pushOCI(t *testing.T, reg *registrytest.Registry, path string, b []byte) string {
	t.Helper()
	c, err := oci.New(oci.WithPlainHTTP(true), oci.WithBasicAuth(reg.Username, reg.Password))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Push(t.Context(), reg.Ref(path), bytes.NewReader(b), int64(len(b)), sha(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCLI_ArtifactImportExport(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("jet", "prop"))
	mod := wasmfixtures.Add()
	manifest := pushOCI(t, reg, "demo/add:v2", mod)
	s := apitest.Start(t, apitest.Config{Importer: withImporter})
	ctx := t.Context()
	vars := map[string]string{
		"JETPROP_SERVER":                     s.URL,
		"JETPROP_ARTIFACT_IMPORT_USERNAME":   "jet",
		"JETPROP_ARTIFACT_IMPORT_PASSWORD":   "prop",
		"JETPROP_ARTIFACT_EXPORT_USERNAME":   "jet",
		"JETPROP_ARTIFACT_EXPORT_PASSWORD":   "prop",
		"JETPROP_ARTIFACT_EXPORT_PLAIN_HTTP": "true",
	}

	if out := jetprop(ctx, vars, "", "artifact", "import", reg.Ref("demo/add:v2"), "--plain-http").ok(t); out != sha(mod)+"\n" {
		t.Fatalf("import printed %q, want the digest", out)
	}
	if _, ok := s.Artifacts.Resolve("add", "v2"); !ok {
		t.Fatal("add:v2 not in the catalog")
	}
	if out := jetprop(ctx, vars, "", "artifact", "import", reg.Ref("demo/add@"+manifest), "--plain-http", "--name", "calc:1").ok(t); out != sha(mod)+"\n" {
		t.Fatalf("import by digest printed %q", out)
	}
	var got struct{ Source string }
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "artifact", "get", "calc:1").ok(t)), &got); err != nil || got.Source != reg.Ref("demo/add@"+manifest) {
		t.Fatalf("calc:1 source %q, %v", got.Source, err)
	}
	jetprop(ctx, vars, "", "artifact", "import", reg.Ref("demo/add:v9"), "--plain-http").fails(t, exitError, `tag "v9" not found`)
	jetprop(ctx, map[string]string{"JETPROP_SERVER": s.URL}, "", "artifact", "import", reg.Ref("demo/add:v2"), "--plain-http").
		fails(t, exitError, "requires authentication and no credentials were given for it (HTTP 502)")
	jetprop(ctx, vars, "", "artifact", "import").fails(t, exitUsage, "missing arguments")

	out := jetprop(ctx, vars, "", "artifact", "export", "add:v2", reg.Ref("demo/copy:1")).ok(t)
	exported := strings.TrimSpace(out)
	if !strings.HasPrefix(exported, "sha256:") {
		t.Fatalf("export printed %q", out)
	}
	puller, err := oci.New(oci.WithPlainHTTP(true), oci.WithBasicAuth("jet", "prop"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := puller.Pull(ctx, reg.Ref("demo/copy:1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(m.Reader)
	m.Reader.Close()
	if err != nil || m.Digest != sha(mod) || m.Manifest != exported || !bytes.Equal(b, mod) {
		t.Fatalf("pulled back %+v (%d bytes, %v), export printed %s", m.Layer, len(b), err, exported)
	}
	jetprop(ctx, vars, "", "artifact", "export", "nope:1", reg.Ref("demo/copy:2")).fails(t, exitError, "(HTTP 404)")
	jetprop(ctx, vars, "", "artifact", "export", "add:v2").fails(t, exitUsage, "missing arguments")
}

func TestCLI_ArtifactImport_NoImporter(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	jetprop(t.Context(), serverEnv(s), "", "artifact", "import", "localhost:5000/demo/add:v1").fails(t, exitError, "(HTTP 501)")
}

// TestCLI_Proxy runs `jetprop proxy` from PROXY_* variables against a real
// registry and broker, and fetches a module the way a Propeller proplet does.
func TestCLI_Proxy(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("jet", "s3cr3t-pw"))
	mod := wasmfixtures.Add()
	pushOCI(t, reg, "demo/add:v1", mod)
	ns := natstest.Start(t)
	vars := map[string]string{
		"PROXY_REGISTRY_URL": "http://" + reg.Host, "PROXY_AUTHENTICATE": "true",
		"PROXY_REGISTRY_USERNAME": "jet", "PROXY_REGISTRY_PASSWORD": "s3cr3t-pw",
		"PROXY_MQTT_ADDRESS": ns.MQTTURL(), "PROXY_DOMAIN_ID": "d1", "PROXY_CHANNEL_ID": "c1",
		"PROXY_CHUNK_SIZE": "16", "PROXY_LOG_LEVEL": "debug",
	}
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	done := make(chan int)
	go func() { done <- jetpropTo(ctx, &out, &errOut, vars, "", "proxy") }()
	natstest.CheckFor(t, 15*time.Second, func() error {
		if !strings.Contains(out.String(), "jetprop proxy") {
			return io.ErrNoProgress
		}
		return nil
	})
	if !strings.Contains(out.String(), "chunk     1024 bytes") {
		t.Errorf("banner %q: want the 1024-byte minimum chunk", out.String())
	}

	topics := wire.Topics{Tenant: "d1", Channel: "c1"}
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(ns.MQTTURL()).SetClientID("rust-proplet"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(50)
	got := make(chan wire.Chunk, 16)
	cl.Subscribe(topics.Topic(wire.SuffixChunk), 1, func(_ paho.Client, m paho.Message) {
		if ch, err := wire.DecodeChunk(m.Payload()); err == nil {
			got <- ch
		}
	}).Wait()
	cl.Publish(topics.Topic(wire.SuffixModuleRequest), 1, false, `{"app_name":"demo/add:v1"}`).Wait()
	select {
	case ch := <-got:
		if ch.AppName != "demo/add:v1" || ch.TotalChunks != 1 || !bytes.Equal(ch.Data, mod) {
			t.Fatalf("chunk %+v", ch)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no chunk; stderr:\n%s", errOut.String())
	}
	natstest.CheckFor(t, 15*time.Second, func() error { // the broker acknowledged the chunk
		if !strings.Contains(errOut.String(), "module delivered") {
			return io.ErrNoProgress
		}
		return nil
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "1 delivered, 0 failed") {
		t.Errorf("shutdown line %q", out.String())
	}
	if logs := errOut.String(); strings.Contains(logs, "s3cr3t-pw") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestCLI_ProxyUsage(t *testing.T) {
	jetprop(t.Context(), map[string]string{"PROXY_MQTT_QOS": "0"}, "", "proxy").fails(t, exitUsage, "--mqtt-qos 0")
	jetprop(t.Context(), map[string]string{"PROXY_CHUNK_SIZE": "x"}, "", "proxy").fails(t, exitUsage, "PROXY_CHUNK_SIZE")
	jetprop(t.Context(), nil, "", "proxy").fails(t, exitError, "tenant id is empty")
	jetprop(t.Context(), map[string]string{"PROXY_DOMAIN_ID": "", "PROXY_CHANNEL_ID": "c"}, "", "proxy").
		fails(t, exitError, "tenant id is empty") // an empty variable is unset
	// The former spellings still parse.
	jetprop(t.Context(), nil, "", "proxy", "--domain-id", "d", "--channel-id", "c", "--mqtt-address", "tcp://x:1", "--mqtt-qos", "0").
		fails(t, exitUsage, "--mqtt-qos 0")
	help := jetprop(t.Context(), nil, "", "proxy", "--help").ok(t)
	for _, env := range []string{"PROXY_REGISTRY_URL", "PROXY_AUTHENTICATE", "PROXY_REGISTRY_USERNAME", "PROXY_REGISTRY_PASSWORD",
		"PROXY_REGISTRY_TOKEN", "PROXY_CHUNK_SIZE", "PROXY_MQTT_ADDRESS", "PROXY_DOMAIN_ID", "PROXY_CHANNEL_ID",
		"PROXY_CLIENT_ID", "PROXY_CLIENT_KEY", "PROXY_LOG_LEVEL", "PROXY_PLAIN_HTTP"} {
		if !strings.Contains(help, "env "+env+")") {
			t.Errorf("help does not name %s", env)
		}
	}
	for _, want := range []string{"--tenant TENANT", "--channel CHANNEL", "--mqtt-url URL", "--domain-id (now --tenant)"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
