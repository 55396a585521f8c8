package oci_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/registrytest"
)

// wasmModule is a valid wasm module of about n bytes: the header and one
// custom section (id 0, a name, random payload), so every call gives
// different bytes.
func wasmModule(t testing.TB, n int) []byte {
	t.Helper()
	const name = "jetprop.fill"
	payload := make([]byte, max(n-32, 1))
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	body := append(uleb(uint64(len(name))), name...)
	body = append(body, payload...)
	m := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00}
	m = append(m, uleb(uint64(len(body)))...)
	return append(m, body...)
}

func uleb(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func digestOf(b []byte) string {
	return domain.DigestOf(b)
}

func newClient(t testing.TB, opts ...oci.Option) *oci.Client {
	t.Helper()
	c, err := oci.New(append([]oci.Option{oci.WithPlainHTTP(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func push(t testing.TB, c *oci.Client, ref string, module []byte) string {
	t.Helper()
	m, err := c.Push(context.Background(), ref, bytes.NewReader(module), int64(len(module)), digestOf(module))
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return m
}

// pullAll pulls ref and reads the whole module.
func pullAll(t testing.TB, c *oci.Client, ref string, maxSize int64) (oci.Module, []byte, error) {
	t.Helper()
	m, err := c.Pull(context.Background(), ref, maxSize)
	if err != nil {
		return m, nil, err
	}
	defer m.Reader.Close()
	b, err := io.ReadAll(m.Reader)
	return m, b, err
}

// blob is one layer or config pushed by rawPush.
type blob struct {
	mediaType string
	data      []byte
}

// rawRepo is an oras repository on reg, for pushing artifacts by hand.
func rawRepo(t testing.TB, reg *registrytest.Registry, repo string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(reg.Ref(repo))
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	if reg.Username != "" {
		r.Client = &auth.Client{Credential: auth.StaticCredential(reg.Host,
			auth.Credential{Username: reg.Username, Password: reg.Password})}
	}
	return r
}

// pushBlob pushes data and returns its descriptor.
func pushBlob(t testing.TB, r *remote.Repository, b blob) ocispec.Descriptor {
	t.Helper()
	d := content.NewDescriptorFromBytes(b.mediaType, b.data)
	if err := r.Push(context.Background(), d, bytes.NewReader(b.data)); err != nil {
		t.Fatalf("push blob %s: %v", b.mediaType, err)
	}
	return d
}

// pushManifest pushes a manifest of manifestType with the config and
// layers, tagged tag, and returns its descriptor.
func pushManifest(t testing.TB, r *remote.Repository, tag, manifestType string, config blob, layers ...blob) ocispec.Descriptor {
	t.Helper()
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: manifestType,
		Config:    pushBlob(t, r, config),
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, pushBlob(t, r, l))
	}
	return pushJSON(t, r, tag, manifestType, m)
}

func pushJSON(t testing.TB, r *remote.Repository, tag, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := content.NewDescriptorFromBytes(mediaType, b)
	if err := r.PushReference(context.Background(), d, bytes.NewReader(b), tag); err != nil {
		t.Fatalf("push manifest %s: %v", tag, err)
	}
	return d
}

// counter counts the blob downloads made through it.
type counter struct {
	base      http.RoundTripper
	blobGets  atomic.Int64
	blobBytes atomic.Int64
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
		c.blobGets.Add(1)
		c.blobBytes.Add(max(resp.ContentLength, 0))
	}
	return resp, err
}

func countingClient() (*counter, *http.Client) {
	c := &counter{base: http.DefaultTransport}
	return c, &http.Client{Transport: c}
}

// store is a real artifacts store on an in-process nats-server, and the
// object store under it (to count what it holds).
func newStore(t testing.TB, maxSize int64) (*artifacts.Store, jetstream.ObjectStore) {
	t.Helper()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	st, err := artifacts.New(ctx, js, artifacts.Options{MaxSize: maxSize})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, artifacts.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return st, obj
}

func objects(t testing.TB, obj jetstream.ObjectStore) []string {
	t.Helper()
	infos, err := obj.List(context.Background())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	return names
}
