package app_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/registrytest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func sha(b []byte) string {
	return domain.DigestOf(b)
}

// pushTo stores b in the registry as path with its credentials and returns
// the manifest digest.
func pushTo(t testing.TB, reg *registrytest.Registry, path string, b []byte) string {
	t.Helper()
	c, err := oci.New(oci.WithPlainHTTP(true), oci.WithBasicAuth(reg.Username, reg.Password))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Push(context.Background(), reg.Ref(path), bytes.NewReader(b), int64(len(b)), sha(b))
	if err != nil {
		t.Fatalf("push %s: %v", path, err)
	}
	return m
}

func unusedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestApp_ImportExport imports from a real registry through the HTTP API
// by tag and by digest, runs the module, maps every registry failure to a
// clear status, and exports a module back to the registry.
func TestApp_ImportExport(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("jet", "prop"))
	mod := wasmfixtures.Add()
	manifest := pushTo(t, reg, "demo/add:v2", mod)
	pushTo(t, reg, "demo/big:1", append(wasmfixtures.Add(), make([]byte, 70<<10)...))
	pushTo(t, reg, "demo/text:1", []byte("hello, I am no wasm module"))

	cfg := testConfig(t.TempDir(), 1)
	cfg.MaxModule = 64 << 10
	a := startApp(t, cfg)
	c := client.New(a.HTTPURL(), nil)
	ctx := t.Context()
	creds := httpapi.RegistryAuth{PlainHTTP: true, Username: "jet", Password: "prop"}

	byTag, err := c.ImportArtifact(ctx, httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2"), RegistryAuth: creds})
	if err != nil || byTag.Name != "add" || byTag.Tag != "v2" || byTag.Digest != sha(mod) || byTag.Source != reg.Ref("demo/add:v2") {
		t.Fatalf("import by tag: %+v %v", byTag, err)
	}
	byDigest, err := c.ImportArtifact(ctx, httpapi.ImportRequest{Ref: reg.Ref("demo/add@" + manifest), RegistryAuth: creds})
	wantTag := "sha256-" + strings.TrimPrefix(manifest, "sha256:")[:12]
	if err != nil || byDigest.Name != "add" || byDigest.Tag != wantTag || byDigest.Digest != byTag.Digest {
		t.Fatalf("import by digest: %+v %v (want tag %s)", byDigest, err, wantTag)
	}
	named, err := c.ImportArtifact(ctx, httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2"), Name: "calc:1", RegistryAuth: creds})
	if err != nil || named.Name != "calc" || named.Tag != "1" || named.Digest != byTag.Digest {
		t.Fatalf("import as calc:1: %+v %v", named, err)
	}
	// The same digest three times: stored once, recorded once under "add".
	if got := eventTypes(t, a, events.ArtifactAggregate("add")); !slices.Equal(got, []string{"artifact.stored", "artifact.tagged", "artifact.tagged"}) {
		t.Fatalf("events of add: %v", got)
	}
	if art, _ := a.Artifacts().Get("add"); len(art.Modules) != 1 || art.Modules[sha(mod)].Source != reg.Ref("demo/add:v2") {
		t.Fatalf("add's modules: %+v", art.Modules)
	}

	waitDevices(t, a, 1)
	if done := runHTTP(t, a, map[string]any{"name": "add", "image_url": "add:v2", "inputs": []any{2, 3}}); done.Status != "completed" || string(done.Results) != `"5"` {
		t.Fatalf("task on the imported module: %s %s %q", done.Status, done.Results, done.Error)
	}

	t.Run("errors", func(t *testing.T) { importErrors(t, a.HTTPURL(), c, reg, creds) })
	t.Run("export", func(t *testing.T) { exportBack(t, c, reg, creds, mod) })
}

func importErrors(t *testing.T, base string, c *client.Client, reg *registrytest.Registry, creds httpapi.RegistryAuth) {
	ctx := t.Context()
	before, err := c.ListArtifacts(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	wrong := creds
	wrong.Password = "wrong"
	none := httpapi.RegistryAuth{PlainHTTP: true}
	both := creds
	both.Token = "t"
	tests := []struct {
		name string
		req  httpapi.ImportRequest
		code int
		want string
	}{
		{"unknown tag", httpapi.ImportRequest{Ref: reg.Ref("demo/add:v9"), RegistryAuth: creds}, http.StatusNotFound, `tag "v9" not found (tags in "demo/add": v2)`},
		{"unknown repository", httpapi.ImportRequest{Ref: reg.Ref("demo/nope:v1"), RegistryAuth: creds}, http.StatusNotFound, `repository "demo/nope" not found`},
		{"wrong password", httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2"), RegistryAuth: wrong}, http.StatusBadGateway, "rejected the credentials"},
		{"no credentials", httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2"), RegistryAuth: none}, http.StatusBadGateway, "requires authentication"},
		{"unreachable", httpapi.ImportRequest{Ref: unusedAddr(t) + "/demo/add:v2", RegistryAuth: none}, http.StatusBadGateway, "unreachable"},
		{"https to a plain registry", httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2"), RegistryAuth: httpapi.RegistryAuth{Username: "jet", Password: "prop"}}, http.StatusBadGateway, "oci: import"},
		{"invalid reference", httpapi.ImportRequest{Ref: reg.Host + "/Demo/ADD:v2", Name: "x", RegistryAuth: creds}, http.StatusBadRequest, "not a reference"},
		{"too large", httpapi.ImportRequest{Ref: reg.Ref("demo/big:1"), RegistryAuth: creds}, http.StatusRequestEntityTooLarge, "more than the 65536 allowed"},
		{"not wasm", httpapi.ImportRequest{Ref: reg.Ref("demo/text:1"), RegistryAuth: creds}, http.StatusBadRequest, "not a wasm module"},
		{"no reference", httpapi.ImportRequest{RegistryAuth: creds}, http.StatusBadRequest, "give the OCI reference"},
		{"no name follows", httpapi.ImportRequest{Ref: reg.Ref("demo/my.module:1"), RegistryAuth: creds}, http.StatusBadRequest, "my.module:1, taken from"},
		{"bad name", httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2"), Name: "a/b", RegistryAuth: creds}, http.StatusBadRequest, "artifact name"},
		{"token and password", httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2"), RegistryAuth: both}, http.StatusBadRequest, "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ImportArtifact(ctx, tc.req)
			if client.StatusCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want HTTP %d with %q", err, tc.code, tc.want)
			}
			if strings.Contains(err.Error(), "prop") && tc.req.Password != "" {
				t.Fatalf("the answer shows the password: %v", err)
			}
		})
	}
	if after, _ := c.ListArtifacts(ctx, 0, 0); after.Total != before.Total {
		t.Fatalf("failed imports changed the catalog: %d rows, then %d", before.Total, after.Total)
	}
	resp, err := http.Post(base+"/artifacts/import", "application/json", strings.NewReader(`{"ref": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad JSON: HTTP %d", resp.StatusCode)
	}
}

func exportBack(t *testing.T, c *client.Client, reg *registrytest.Registry, creds httpapi.RegistryAuth, mod []byte) {
	ctx := t.Context()
	to := reg.Ref("demo/copy:1")
	r, err := c.ExportArtifact(ctx, "add:v2", httpapi.ExportRequest{To: to, RegistryAuth: creds})
	if err != nil || !strings.HasPrefix(r.ManifestDigest, "sha256:") || r.Digest != sha(mod) || r.To != to {
		t.Fatalf("export: %+v %v", r, err)
	}
	puller, err := oci.New(oci.WithPlainHTTP(true), oci.WithBasicAuth("jet", "prop"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := puller.Pull(ctx, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(m.Reader)
	m.Reader.Close()
	if err != nil || m.Digest != sha(mod) || m.Manifest != r.ManifestDigest || m.MediaType != oci.MediaTypeWasmLayer || !bytes.Equal(got, mod) {
		t.Fatalf("pulled back %+v (%d bytes, %v), exported %+v", m.Layer, len(got), err, r)
	}
	again, err := c.ExportArtifact(ctx, sha(mod), httpapi.ExportRequest{To: to, RegistryAuth: creds})
	if err != nil || again.ManifestDigest != r.ManifestDigest {
		t.Fatalf("export by digest again: %+v %v", again, err)
	}

	wrong := creds
	wrong.Password = "nope"
	tests := []struct {
		name, ref string
		req       httpapi.ExportRequest
		code      int
		want      string
	}{
		{"unknown artifact", "nope:1", httpapi.ExportRequest{To: to, RegistryAuth: creds}, http.StatusNotFound, "not found"},
		{"to a digest", "add:v2", httpapi.ExportRequest{To: reg.Ref("demo/copy@" + r.ManifestDigest), RegistryAuth: creds}, http.StatusBadRequest, "needs a tag"},
		{"no target", "add:v2", httpapi.ExportRequest{RegistryAuth: creds}, http.StatusBadRequest, "give the OCI reference"},
		{"wrong password", "add:v2", httpapi.ExportRequest{To: to, RegistryAuth: wrong}, http.StatusBadGateway, "rejected the credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ExportArtifact(ctx, tc.ref, tc.req)
			if client.StatusCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want HTTP %d with %q", err, tc.code, tc.want)
			}
		})
	}
}
