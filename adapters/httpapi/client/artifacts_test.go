package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func TestClient_ArtifactRoundTrip(t *testing.T) {
	s, c := start(t, apitest.Config{})
	ctx := t.Context()
	add := wasmfixtures.Add()

	var seen []int64
	a, err := c.PushArtifact(ctx, "vision", "1.2", bytes.NewReader(add), int64(len(add)), func(n int64) { seen = append(seen, n) })
	if err != nil || a.Name != "vision" || a.Tag != "1.2" || a.Size != int64(len(add)) {
		t.Fatalf("push %+v %v", a, err)
	}
	if len(seen) == 0 || seen[len(seen)-1] != int64(len(add)) {
		t.Fatalf("progress %v, want it to end at %d", seen, len(add))
	}
	if b, err := c.PushArtifact(ctx, "vision:latest", "", bytes.NewReader(add), 0, nil); err != nil || b.Digest != a.Digest || b.Tag != "latest" {
		t.Fatalf("push without size %+v %v", b, err)
	}
	if page, err := c.ListArtifacts(ctx, 1, 1); err != nil || page.Total != 2 || len(page.Artifacts) != 1 || page.Artifacts[0].Tag != "latest" {
		t.Fatalf("list %+v %v", page, err)
	}
	if got, err := c.GetArtifact(ctx, "vision:1.2"); err != nil || got.Digest != a.Digest || len(got.History) != 1 {
		t.Fatalf("get %+v %v", got, err)
	}
	var buf bytes.Buffer
	if d, n, err := c.DownloadArtifact(ctx, a.Digest, &buf); err != nil || d != a.Digest || n != int64(len(add)) || !bytes.Equal(buf.Bytes(), add) {
		t.Fatalf("download %s %d %v", d, n, err)
	}

	task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", ImageURL: "vision:1.2"})
	if err != nil || task.Module != a.Digest {
		t.Fatalf("task %+v %v", task, err)
	}
	if err := c.DeleteArtifact(ctx, "vision:1.2"); err != nil {
		t.Fatalf("delete one of two tags: %v", err)
	}
	if err := c.DeleteArtifactName(ctx, "vision"); client.StatusCode(err) != http.StatusConflict {
		t.Fatalf("delete a module in use: %v", err)
	}
	if err := c.DeleteTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteArtifactName(ctx, "vision"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if s.Modules.Has(ctx, a.Digest) {
		t.Fatal("module still stored")
	}

	errTests := []struct {
		name string
		err  error
		want int
	}{
		{"get unknown", second(c.GetArtifact(ctx, "vision:1.2")), http.StatusNotFound},
		{"download unknown", third(c.DownloadArtifact(ctx, "nope", io.Discard)), http.StatusNotFound},
		{"delete unknown", c.DeleteArtifact(ctx, "nope"), http.StatusNotFound},
		{"push not wasm", second(c.PushArtifact(ctx, "x", "", bytes.NewReader(wasmfixtures.Invalid()), 0, nil)), http.StatusBadRequest},
		{"push bad name", second(c.PushArtifact(ctx, "x/y", "", bytes.NewReader(add), 0, nil)), http.StatusBadRequest},
	}
	for _, tc := range errTests {
		if got := client.StatusCode(tc.err); got != tc.want {
			t.Errorf("%s: %v, want HTTP %d", tc.name, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error        { return err }
func third[A, B any](_ A, _ B, err error) error { return err }

// TestClient_DownloadArtifact_Mismatch: a download whose bytes do not have
// the announced digest is an error. (A real server cannot be made to send
// wrong bytes, so a handler plays one.)
func TestClient_DownloadArtifact_Mismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(httpapi.HeaderModuleDigest, "sha256:"+fmt.Sprintf("%064d", 0))
		_, _ = w.Write(wasmfixtures.Add())
	}))
	t.Cleanup(srv.Close)
	_, n, err := client.New(srv.URL, nil).DownloadArtifact(t.Context(), "x", io.Discard)
	if !errors.Is(err, client.ErrDigestMismatch) || n != int64(len(wasmfixtures.Add())) {
		t.Fatalf("%d bytes, %v", n, err)
	}
}

// moduleReader returns a valid wasm module of about size bytes (the wasm
// header, then one custom section of random bytes from seed) without
// holding it in memory.
func moduleReader(size int64, seed uint64) io.Reader {
	header := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00} // header, custom section id
	content := size - int64(len(header)) - 5                               // 5: the section size, as a padded LEB128
	section := make([]byte, 5)                                             // LEB128 padded to 5 bytes whatever the size
	for i := range section {
		section[i] = byte(content>>(7*i))&0x7f | 0x80
	}
	section[4] &= 0x7f
	name := []byte{3, 'p', 'a', 'd'}
	body := io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), content-int64(len(name)))
	return io.MultiReader(bytes.NewReader(header), bytes.NewReader(section), bytes.NewReader(name), body)
}

// moduleDigest is the digest of what moduleReader returns.
func moduleDigest(size int64, seed uint64) string {
	h := sha256.New()
	_, _ = io.Copy(h, moduleReader(size, seed))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// memUse is how much a piece of work made the heap grow.
type memUse struct {
	live  uint64 // peak growth of the live heap (as the last GC found it)
	inuse uint64 // peak growth of HeapInuse (live and not yet collected)
	alloc uint64 // bytes allocated
}

func (m memUse) String() string {
	return fmt.Sprintf("live heap +%.1f MiB, HeapInuse +%.1f MiB, allocated %.1f MiB",
		float64(m.live)/(1<<20), float64(m.inuse)/(1<<20), float64(m.alloc)/(1<<20))
}

// measureHeap runs fn while sampling the heap every 5 ms.
func measureHeap(fn func()) memUse {
	runtime.GC()
	base, baseLive := readHeap()
	var use memUse
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			ms, live := readHeap()
			use.inuse = max(use.inuse, ms.HeapInuse-min(ms.HeapInuse, base.HeapInuse))
			use.live = max(use.live, live-min(live, baseLive))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	fn()
	close(done)
	wg.Wait()
	end, _ := readHeap()
	use.alloc = end.TotalAlloc - base.TotalAlloc
	return use
}

func readHeap() (runtime.MemStats, uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return ms, s[0].Value.Uint64()
}

// TestClient_PushArtifact_Streams shows that an upload is streamed: the
// server spools the first part of a module to disk while the rest has not
// been sent yet (a server that read the body whole first would wait). The
// heap's growth is logged; BenchmarkClient_PushArtifact reports it too.
func TestClient_PushArtifact_Streams(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 48 MiB")
	}
	const size, first = 48 << 20, 8 << 20
	spool := t.TempDir()
	t.Setenv("TMPDIR", spool) // where the module store spools uploads
	_, c := start(t, apitest.Config{})
	ctx := t.Context()

	module, body := moduleReader(size, 1), newPipe()
	pushed := make(chan error, 1)
	var use memUse
	go func() {
		var a httpapi.Artifact
		var err error
		use = measureHeap(func() { a, err = c.PushArtifact(ctx, "big", "1", body.r, size, nil) })
		if err == nil && (a.Digest != moduleDigest(size, 1) || a.Size != size) {
			err = fmt.Errorf("pushed %+v", a)
		}
		pushed <- err
	}()
	if _, err := io.CopyN(body.w, module, first); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		if n := spooled(t, spool); n < first/2 {
			return fmt.Errorf("%d bytes spooled of the %d sent so far", n, first)
		}
		return nil
	})
	if _, err := io.Copy(body.w, module); err != nil {
		t.Fatal(err)
	}
	body.w.Close()
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed %d MiB: %v", size>>20, use)
}

type pipe struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newPipe() pipe {
	r, w := io.Pipe()
	return pipe{r, w}
}

// spooled is the size of the upload spool files in dir.
func spooled(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "jetprop-module-*"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkClient_PushArtifact measures uploads through the API into the
// object store (client, HTTP over loopback, spool and hash, object store
// put, events), one new module per iteration, and how the heap grew; "store"
// is the module store alone (spool, hash, object store put), the baseline.
//
//	go test -run '^$' -bench PushArtifact -benchtime 10x ./adapters/httpapi/client/
func BenchmarkClient_PushArtifact(b *testing.B) {
	for _, size := range []int64{1 << 20, 10 << 20, 50 << 20} {
		for _, via := range []string{"api", "store"} {
			b.Run(fmt.Sprintf("%dMiB/%s", size>>20, via), func(b *testing.B) {
				benchPush(b, size, via == "api")
			})
		}
	}
}

func benchPush(b *testing.B, size int64, api bool) {
	s := apitest.Start(b, apitest.Config{})
	c := client.New(s.URL, nil)
	ctx := context.Background()
	push := func(i int) (string, error) {
		if !api {
			d, _, err := s.Modules.Put(ctx, moduleReader(size, uint64(i)+1))
			return d, err
		}
		a, err := c.PushArtifact(ctx, "bench", fmt.Sprint(i), moduleReader(size, uint64(i)+1), size, nil)
		return a.Digest, err
	}
	var peak memUse
	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		var digest string
		var err error
		use := measureHeap(func() {
			t0 := time.Now()
			digest, err = push(i)
			elapsed += time.Since(t0)
		})
		if err != nil {
			b.Fatal(err)
		}
		peak = memUse{live: max(peak.live, use.live), inuse: max(peak.inuse, use.inuse), alloc: max(peak.alloc, use.alloc)}
		if err := s.Modules.Delete(ctx, digest); err != nil { // keep the store small
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/elapsed.Seconds(), "MiB/s")
	b.ReportMetric(float64(peak.live)/(1<<20), "peak-live-MiB")
	b.ReportMetric(float64(peak.inuse)/(1<<20), "peak-inuse-MiB")
	b.ReportMetric(float64(peak.alloc)/float64(size), "alloc/byte")
}
