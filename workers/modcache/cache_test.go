package modcache_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/workers/modcache"
)

func digestOf(b []byte) string {
	return domain.DigestOf(b)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// download stores module in chunks of size chunk, in reverse order, and
// commits it.
func download(t *testing.T, c *modcache.Cache, app string, module []byte, chunk int) string {
	t.Helper()
	p := partial(t, c, app, module, chunk, -1)
	digest, got, err := c.Commit(p, digestOf(module))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) || digest != digestOf(module) {
		t.Fatalf("commit returned %d bytes, %s", len(got), digest)
	}
	return digest
}

// partial stores the chunks of module except skip, last first.
func partial(t *testing.T, c *modcache.Cache, app string, module []byte, chunk, skip int) *modcache.Partial {
	t.Helper()
	p, err := c.Partial(app)
	if err != nil {
		t.Fatal(err)
	}
	total := (len(module) + chunk - 1) / chunk
	if p.Meta().Total == 0 {
		if err := p.SetMeta(modcache.Meta{AppName: app, Total: total, Size: int64(len(module))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := total - 1; i >= 0; i-- {
		if i == skip {
			continue
		}
		if _, err := p.Put(i, module[i*chunk:min((i+1)*chunk, len(module))]); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func open(t *testing.T, dir string, max int64) *modcache.Cache {
	t.Helper()
	c, err := modcache.Open(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCache_CommitAndRead(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	module := random(10_000)
	digest := download(t, c, "app:1", module, 3000)
	got, err := c.Read(digest)
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("read: %v", err)
	}
	if st := c.Stats(); st.Modules != 1 || st.Bytes != 10_000 {
		t.Fatalf("stats %+v", st)
	}
	if des, _ := os.ReadDir(filepath.Join(dir, "partial")); len(des) != 0 {
		t.Fatalf("partial left behind: %v", des)
	}
	if _, err := c.Read(digestOf([]byte("other"))); !errors.Is(err, modcache.ErrNotFound) {
		t.Fatalf("read of an absent module: %v", err)
	}
	if _, err := c.Read("latest"); !errors.Is(err, domain.ErrBadDigest) {
		t.Fatalf("read of a non-digest: %v", err)
	}
}

func TestCache_Mismatch(t *testing.T) {
	tests := []struct {
		name string
		want string
		size int64
	}{
		{name: "digest", want: digestOf([]byte("something else"))},
		{name: "size", size: 12_345},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir(), 1<<20)
			module := random(10_000)
			p := partial(t, c, "app", module, 4096, -1)
			if tc.size != 0 {
				m := p.Meta()
				m.Size = tc.size
				if err := p.SetMeta(m); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := c.Commit(p, tc.want)
			if !errors.Is(err, modcache.ErrMismatch) {
				t.Fatalf("commit: %v", err)
			}
			if st := c.Stats(); st.Modules != 0 {
				t.Fatalf("a mismatching module was cached: %+v", st)
			}
			if !p.Complete() {
				t.Fatal("the partial changed on a mismatch")
			}
		})
	}
}

func TestCache_ResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	module := random(10_000)
	c := open(t, dir, 1<<20)
	partial(t, c, "app:2", module, 1000, 4) // every chunk but 4
	// a chunk cut short by a crash, and a leftover assembly
	os.WriteFile(filepath.Join(dir, "tmp", "module-123"), []byte("x"), 0o600)

	c = open(t, dir, 1<<20)
	p, err := c.Partial("app:2")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Missing(); !slices.Equal(got, []int{4}) || p.Count() != 9 || p.Meta().Total != 10 {
		t.Fatalf("missing %v, count %d, meta %+v", got, p.Count(), p.Meta())
	}
	if added, err := p.Put(7, []byte("dup")); added || err != nil {
		t.Fatalf("duplicate put: %v %v", added, err)
	}
	if _, err := p.Put(4, module[4000:5000]); err != nil {
		t.Fatal(err)
	}
	if digest, _, err := c.Commit(p, ""); err != nil || digest != digestOf(module) {
		t.Fatalf("commit: %s %v", digest, err)
	}
	if des, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(des) != 0 {
		t.Fatalf("tmp not cleaned: %v", des)
	}
}

func TestPartial_BadChunks(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	p, err := c.Partial("app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Put(0, []byte("x")); !errors.Is(err, modcache.ErrBadChunk) {
		t.Fatalf("put before the total: %v", err)
	}
	if err := p.SetMeta(modcache.Meta{AppName: "app", Total: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Put(3, []byte("x")); !errors.Is(err, modcache.ErrBadChunk) {
		t.Fatalf("put past the end: %v", err)
	}
	if err := p.SetMeta(modcache.Meta{AppName: "app", Total: 4}); !errors.Is(err, modcache.ErrBadChunk) {
		t.Fatalf("total changed: %v", err)
	}
	if err := p.SetMeta(modcache.Meta{AppName: "app", Total: modcache.MaxChunks + 1}); !errors.Is(err, modcache.ErrBadChunk) {
		t.Fatalf("huge total: %v", err)
	}
	if _, _, err := c.Commit(p, ""); !errors.Is(err, modcache.ErrIncomplete) {
		t.Fatalf("commit of an incomplete download: %v", err)
	}
	if err := p.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := p.SetMeta(modcache.Meta{AppName: "app", Total: 4}); err != nil || p.Count() != 0 {
		t.Fatalf("after reset: %v, %d chunks", err, p.Count())
	}
}

// TestCache_EvictsLeastRecentlyUsed: the bound holds after every commit;
// a read makes a module recent, and the order survives a restart.
func TestCache_EvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 3000)
	a := download(t, c, "a", random(1000), 500)
	time.Sleep(10 * time.Millisecond) // mtime granularity
	b := download(t, c, "b", random(1000), 500)
	time.Sleep(10 * time.Millisecond)
	d := download(t, c, "d", random(1000), 500)
	time.Sleep(10 * time.Millisecond)
	if _, err := c.Read(a); err != nil { // a is now the most recent
		t.Fatal(err)
	}
	e := download(t, c, "e", random(1000), 500)
	if got := c.Digests(); !slices.Equal(got, []string{d, a, e}) {
		t.Fatalf("cached %v, want d, a, e (b evicted)", got)
	}
	if c.Has(b) {
		t.Fatal("b still cached")
	}
	c = open(t, dir, 3000)
	if got := c.Digests(); !slices.Equal(got, []string{d, a, e}) || c.Stats().Bytes != 3000 {
		t.Fatalf("after a restart %v (%+v)", got, c.Stats())
	}
	// A smaller bound evicts at open.
	c = open(t, dir, 1500)
	if got := c.Digests(); !slices.Equal(got, []string{e}) {
		t.Fatalf("with a smaller bound %v", got)
	}
}

// TestCache_LargerThanBound: a module larger than the whole bound is
// returned by Commit, then not kept.
func TestCache_LargerThanBound(t *testing.T) {
	c := open(t, t.TempDir(), 1000)
	small := download(t, c, "small", random(500), 500)
	download(t, c, "big", random(2000), 500)
	if got := c.Digests(); len(got) != 1 || got[0] != small {
		t.Fatalf("cached %v", got)
	}
}

func TestParseDigest(t *testing.T) {
	good := digestOf([]byte("x"))
	tests := []struct {
		in      string
		wantErr bool
	}{
		{good, false},
		{good[len("sha256:"):], true},
		{"sha256:ABC", true},
		{"sha512:" + good[len("sha256:"):], true},
		{"sha256:" + string(bytes.ToUpper([]byte(good[len("sha256:"):]))), true},
	}
	for _, tc := range tests {
		if _, err := domain.ParseDigest(tc.in); (err != nil) != tc.wantErr {
			t.Errorf("ParseDigest(%q): %v", tc.in, err)
		}
	}
}

// TestCache_DamagedAfterRestart: a module damaged on disk (as a power cut
// may leave it) is found by the first read after Open, removed and
// reported not cached.
func TestCache_DamagedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	module := random(5000)
	digest := download(t, c, "app", module, 1000)
	path := filepath.Join(dir, "sha256", digest[len("sha256:"):])
	if err := os.WriteFile(path, module[:4000], 0o600); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir, 1<<20)
	if _, err := c.Read(digest); !errors.Is(err, modcache.ErrNotFound) {
		t.Fatalf("read of a damaged module: %v", err)
	}
	if c.Has(digest) || c.Stats().Bytes != 0 {
		t.Fatalf("damaged module still cached: %+v", c.Stats())
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("damaged file left: %v", err)
	}
}
