package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine/domain"
)

func TestQualify(t *testing.T) {
	tests := []struct {
		name, app, registry string
		want, wantErr       string
	}{
		{"relative", "demo/add:v1", "localhost:5000", "localhost:5000/demo/add:v1", ""},
		{"relative one element", "add.wasm", "reg.example.com", "reg.example.com/add.wasm", ""},
		{"relative digest", "demo/add@sha256:ab", "r:1", "r:1/demo/add@sha256:ab", ""},
		{"full with port", "localhost:5000/demo/add:v2", "other:1", "localhost:5000/demo/add:v2", ""},
		{"full with dot", "ghcr.io/org/add:1", "", "ghcr.io/org/add:1", ""},
		{"localhost", "localhost/add", "", "localhost/add", ""},
		{"docker hub", "docker.io/mrstevenyaga/add.wasm", "", "registry-1.docker.io/mrstevenyaga/add.wasm", ""},
		{"docker hub library", "docker.io/hello:1", "", "registry-1.docker.io/library/hello:1", ""},
		{"relative to docker hub", "hello", dockerHub("docker.io"), "registry-1.docker.io/library/hello", ""},
		{"no registry", "demo/add:v1", "", "", "names no registry"},
		{"url", "https://example.com/add.wasm", "r:1", "", "is a URL"},
		{"spaces", "demo/a b", "r:1", "", "not an image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := qualify(tc.app, tc.registry)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("qualify(%q) = %q, %v; want an error with %q", tc.app, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("qualify(%q, %q) = %q, %v; want %q", tc.app, tc.registry, got, err, tc.want)
			}
		})
	}
}

func TestParseRegistryURL(t *testing.T) {
	tests := []struct {
		in        string
		host      string
		plain, ok bool
	}{
		{"", "", false, true},
		{"localhost:5000", "localhost:5000", false, true},
		{"localhost:5000/", "localhost:5000", false, true},
		{"docker.io", "registry-1.docker.io", false, true},
		{"http://reg:5000", "reg:5000", true, true},
		{"https://reg.example.com", "reg.example.com", false, true},
		{"ftp://reg", "", false, false},
		{"http://reg/path", "", false, false},
		{"reg/path", "", false, false},
		{"http://user:pw@reg", "", false, false},
	}
	for _, tc := range tests {
		host, plain, err := parseRegistryURL(tc.in)
		if (err == nil) != tc.ok || host != tc.host || plain != tc.plain {
			t.Errorf("parseRegistryURL(%q) = %q, %t, %v; want %q, %t, ok=%t", tc.in, host, plain, err, tc.host, tc.plain, tc.ok)
		}
	}
}

// wasm is a module of n bytes (header, a custom section) ending in fill.
func wasm(n int, fill byte) []byte {
	body := append([]byte{1, 'x'}, bytes.Repeat([]byte{fill}, n-12)...)
	return append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0, byte(len(body))}, body...)
}

func TestCache_KeepsTheMostRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	c, err := newCache(t.TempDir(), 100, 250, &counters{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	put := func(b []byte) string {
		t.Helper()
		d, n, err := c.Put(ctx, bytes.NewReader(b))
		if err != nil || n != int64(len(b)) {
			t.Fatalf("put: %d bytes, %v", n, err)
		}
		return d
	}
	a, b := put(wasm(100, 'a')), put(wasm(100, 'b'))
	if !c.Has(ctx, a) { // a is now the most recent
		t.Fatal("a not cached")
	}
	d := put(wasm(100, 'c')) // 300 > 250: b, the least recently used, goes
	if c.Has(ctx, b) || !c.Has(ctx, a) || !c.Has(ctx, d) {
		t.Fatalf("after eviction: a %t, b %t, c %t", c.Has(ctx, a), c.Has(ctx, b), c.Has(ctx, d))
	}
	rc, n, err := c.Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if n != 100 || !bytes.Equal(got, wasm(100, 'a')) {
		t.Fatalf("open a: %d bytes", n)
	}
	if _, _, err := c.Open(ctx, b); !errors.Is(err, domain.ErrModuleNotFound) {
		t.Fatalf("open evicted: %v", err)
	}
	if c.stats.pulls.Load() != 3 {
		t.Fatalf("%d pulls counted", c.stats.pulls.Load())
	}
}

func TestCache_Refuses(t *testing.T) {
	ctx := context.Background()
	c, err := newCache(t.TempDir(), 100, 1000, &counters{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Put(ctx, strings.NewReader("hello, not wasm")); !errors.Is(err, domain.ErrNotWasm) {
		t.Fatalf("not wasm: %v", err)
	}
	if _, _, err := c.Put(ctx, bytes.NewReader(wasm(101, 'x'))); !errors.Is(err, domain.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if files, _ := os.ReadDir(c.dir); len(files) != 0 {
		t.Fatalf("left %d files behind", len(files))
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Fatalf("cache dir after close: %v", err)
	}
}
