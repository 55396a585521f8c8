package proplet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// longWait bounds a large transfer under the race detector.
const longWait = 45 * time.Second

// startFor is the start the dispatcher sends for a module too large to go
// inline: image_url is the digest, with digest and size set.
func startFor(id, digest string, size int, propletID string) wire.StartRequest {
	return wire.StartRequest{ID: id, Name: "add", Inputs: wire.Strings{"2", "3"}, ImageURL: digest,
		Digest: digest, Size: int64(size), PropletID: propletID}
}

// deliveryConfig is testConfig with the default number of quiet periods,
// each as long as a test waits for a result. A quiet period ends in a
// request for the missing chunks, meant for chunks lost on the way; no
// test here loses one, and they count requests and rounds exactly. A
// shorter period (it was 1 s) ends on a loaded machine before the engine's
// first chunk arrives (measured: 1.35 s for 50 MiB under -race beside a CPU
// hog), which asks again and adds a round.
func deliveryConfig(t testing.TB, rig *engineRig, id string) proplet.Config {
	cfg := testConfig(t, rig.ns)
	cfg.EntityID = id
	cfg.ChunkTimeout, cfg.ChunkRetries = longWait, proplet.DefaultChunkRetries
	cfg.Liveliness = time.Second
	return cfg
}

// waitResultFor waits for a task's first result, up to d.
func waitResultFor(t testing.TB, m *manager, taskID string, d time.Duration) (wire.Result, string) {
	t.Helper()
	var r wire.Result
	var raw string
	natstest.CheckFor(t, d, func() error {
		rs, raws := m.results(taskID)
		if len(rs) == 0 {
			return fmt.Errorf("no result for %s", taskID)
		}
		r, raw = rs[0], raws[0]
		return nil
	})
	return r, raw
}

func wantFive(t testing.TB, m *manager, taskID string) {
	t.Helper()
	if r, raw := waitResultFor(t, m, taskID, longWait); r.Failed() || r.Text() != "5" {
		t.Fatalf("result %s", raw)
	}
}

// TestDelivery_Sizes: 1, 10 and 50 MB modules reach a proplet in chunks
// over MQTT from the real chunk server, assemble to the same digest (the
// file in the proplet's cache hashes to it) and run. Then a second task
// with the same digest runs from the cache: no request, no new transfer
// event, even after the proplet restarts.
func TestDelivery_Sizes(t *testing.T) {
	sizes := []int{1 << 20, 10 << 20, 50 << 20}
	if testing.Short() {
		sizes = sizes[:2]
	}
	rig := newEngineRig(t, rigOptions{})
	m := newManagerAt(t, rig.ns.MQTTURL())
	cfg := deliveryConfig(t, rig, "proplet-1")
	p := startProplet(t, cfg, m)
	var digests []string
	for _, size := range sizes {
		t.Run(fmt.Sprintf("%dMiB", size>>20), func(t *testing.T) {
			module := wasmfixtures.Padded(wasmfixtures.Add(), size)
			digest := rig.put(module)
			if digest != digestOf(module) {
				t.Fatalf("stored as %s", digest)
			}
			digests = append(digests, digest)
			task := fmt.Sprintf("size-%d", size)
			start := time.Now()
			m.start(startFor(task, digest, size, cfg.EntityID))
			wantFive(t, m, task)
			t.Logf("%d MiB delivered and run in %s", size>>20, time.Since(start))
			if got := fileDigest(t, filepath.Join(cfg.DataDir, "modules", "sha256", strings.TrimPrefix(digest, "sha256:"))); got != digest {
				t.Fatalf("cached file hashes to %s, want %s", got, digest)
			}
			tr := rig.waitTransfer(digest, cfg.EntityID)
			if tr.Rounds != 1 || tr.SentAll != tr.Total || tr.Total != (size+511999)/512000 {
				t.Fatalf("transfer %+v", tr)
			}
			if reqs := rig.requestsFor(digest); len(reqs) != 1 || reqs[0].PropletID != cfg.EntityID || reqs[0].TaskID != task || len(reqs[0].Chunks) != 0 {
				t.Fatalf("requests %+v", reqs)
			}

			_, events := rig.transfer(digest, cfg.EntityID)
			hits := p.Delivery().CacheHits
			m.start(startFor(task+"-again", digest, size, cfg.EntityID))
			wantFive(t, m, task+"-again")
			if _, n := rig.transfer(digest, cfg.EntityID); n != events {
				t.Fatalf("%d new transfer events for a cached module", n-events)
			}
			if len(rig.requestsFor(digest)) != 1 || p.Delivery().CacheHits != hits+1 {
				t.Fatalf("requests %+v, stats %+v", rig.requestsFor(digest), p.Delivery())
			}
		})
	}
	// The cache survives a restart.
	p.stop(t)
	p = startProplet(t, cfg, m)
	for i, digest := range digests {
		task := fmt.Sprintf("after-restart-%d", i)
		m.start(startFor(task, digest, 0, cfg.EntityID))
		wantFive(t, m, task)
	}
	if st := p.Delivery(); st.CacheHits != uint64(len(digests)) || st.Requests != 0 {
		t.Fatalf("after a restart: %+v", st)
	}
	got, partial := cached(t, cfg.DataDir)
	slices.Sort(got)
	slices.Sort(digests)
	if !slices.Equal(got, digests) || partial != 0 {
		t.Fatalf("cache %v, %d partial chunks; want %v", got, partial, digests)
	}
}

// TestDelivery_ResumesAfterKill kills a proplet process (kill -9) part way
// through a download. Started again on the same data dir and sent the
// task again, it asks only for the chunks it had not stored, so fewer than
// all chunks are sent twice.
func TestDelivery_ResumesAfterKill(t *testing.T) {
	size, chunk := 10<<20, 64<<10
	total := (size + chunk - 1) / chunk
	// The engine's first read stops after a quarter of the module: the
	// proplet is killed with those chunks on disk and none of the rest.
	rig := newEngineRig(t, rigOptions{chunkSize: chunk, pauseAt: int64(total/4) * int64(chunk)})
	m := newManagerAt(t, rig.ns.MQTTURL())
	cfg := deliveryConfig(t, rig, "proplet-kill")
	module := wasmfixtures.Padded(wasmfixtures.Add(), size)
	digest := rig.put(module)

	c := startChild(t, cfg)
	m.waitDiscoveries(1)
	m.start(startFor("before-kill", digest, size, cfg.EntityID))
	natstest.CheckFor(t, longWait, func() error {
		if n := partialChunks(cfg.DataDir); n < total/4 {
			return fmt.Errorf("%d of %d chunks on disk", n, total)
		}
		return nil
	})
	c.kill()
	rig.resumeOnce()
	kept := partialChunks(cfg.DataDir)
	if kept != total/4 {
		t.Fatalf("the proplet had %d chunks when it was killed, want %d", kept, total/4)
	}
	waitGone(t, rig.ns.NATS(), cfg.EntityID)
	// The engine finishes the first round without anyone listening.
	if tr := rig.waitTransfer(digest, cfg.EntityID); tr.Rounds != 1 || tr.SentAll != total {
		t.Fatalf("first round %+v", tr)
	}

	p := launch(t, cfg)
	if r, raw := m.waitResult("before-kill"); r.Error != "interrupted: proplet restarted" {
		t.Fatalf("result %s", raw)
	}
	m.start(startFor("after-kill", digest, size, cfg.EntityID))
	wantFive(t, m, "after-kill")

	reqs := rig.requestsFor(digest)
	last := reqs[len(reqs)-1]
	if len(reqs) != 2 || len(reqs[0].Chunks) != 0 || len(last.Chunks) != total-kept || last.TaskID != "after-kill" {
		t.Fatalf("%d requests, the last for %d chunks (%d were kept of %d)", len(reqs), len(last.Chunks), kept, total)
	}
	var tr engine.Transfer
	natstest.CheckFor(t, wait, func() error {
		tr, _ = rig.transfer(digest, cfg.EntityID)
		if tr.Rounds != 2 || !tr.Completed {
			return fmt.Errorf("transfer %+v", tr)
		}
		return nil
	})
	if resent := tr.SentAll - tr.Total; resent >= tr.Total || resent != total-kept {
		t.Fatalf("%d of %d chunks sent twice, want %d", resent, tr.Total, total-kept)
	}
	if st := p.Delivery(); st.Chunks != uint64(total-kept) || st.Requests != 1 {
		t.Fatalf("stats after the restart %+v", st)
	}
	if got := fileDigest(t, filepath.Join(cfg.DataDir, "modules", "sha256", strings.TrimPrefix(digest, "sha256:"))); got != digest {
		t.Fatalf("cached module hashes to %s", got)
	}
	t.Logf("killed with %d of %d chunks on disk; %d sent again", kept, total, tr.SentAll-tr.Total)
}

// TestDelivery_TenPropletsAndPropeller: ten proplets ask for one module at
// once; each gets it on its own topic. Meanwhile a Propeller-protocol
// proplet (a plain paho client: {app_name} on registry/proplet, chunks
// assembled from registry/server) gets it on the shared topic, once.
func TestDelivery_TenPropletsAndPropeller(t *testing.T) {
	rig := newEngineRig(t, rigOptions{})
	m := newManagerAt(t, rig.ns.MQTTURL())
	size := 2 << 20
	module := wasmfixtures.Padded(wasmfixtures.Add(), size)
	digest := rig.put(module)
	var ids []string
	for i := range 10 {
		cfg := deliveryConfig(t, rig, fmt.Sprintf("fleet-%d", i))
		startProplet(t, cfg, m)
		ids = append(ids, cfg.EntityID)
	}
	propeller := newPropellerProplet(t, rig.ns.MQTTURL())
	for _, id := range ids {
		m.start(startFor("run-"+id, digest, size, id))
	}
	propeller.request(digest)
	for _, id := range ids {
		wantFive(t, m, "run-"+id)
		if tr := rig.waitTransfer(digest, id); tr.SentAll != tr.Total {
			t.Fatalf("transfer to %s: %+v", id, tr)
		}
	}
	got := propeller.assembled(t, digest)
	if digestOf(got) != digest {
		t.Fatalf("the Propeller proplet assembled %s", digestOf(got))
	}
	// The shared topic carried the module once: for the Propeller proplet.
	if tr := rig.waitTransfer(digest, "shared"); tr.Rounds != 1 || tr.SentAll != tr.Total {
		t.Fatalf("shared transfer %+v", tr)
	}
	if dups := propeller.duplicates(); dups != 0 {
		t.Fatalf("%d chunks came twice on the shared topic", dups)
	}
}

// TestDelivery_SharedDownload: tasks that need the same module at the same
// time share one download: one request, one transfer.
func TestDelivery_SharedDownload(t *testing.T) {
	rig := newEngineRig(t, rigOptions{})
	m := newManagerAt(t, rig.ns.MQTTURL())
	cfg := deliveryConfig(t, rig, "proplet-1")
	p := startProplet(t, cfg, m)
	size := 3 << 20
	module := wasmfixtures.Padded(wasmfixtures.Add(), size)
	digest := rig.put(module)
	rig.alias("demo/add:v1", digest)
	for i := range 5 {
		m.start(startFor(fmt.Sprintf("same-%d", i), digest, size, cfg.EntityID))
	}
	// The same module under a name, its digest given: joins the download.
	named := startFor("same-named", digest, size, cfg.EntityID)
	named.ImageURL = "demo/add:v1"
	m.start(named)
	for i := range 5 {
		wantFive(t, m, fmt.Sprintf("same-%d", i))
	}
	wantFive(t, m, "same-named")
	st := p.Delivery()
	if st.Downloads != 1 || st.Requests != 1 || len(rig.requestsFor(digest)) != 1 {
		t.Fatalf("stats %+v, requests %+v", st, rig.requestsFor(digest))
	}
	if tr := rig.waitTransfer(digest, cfg.EntityID); tr.Rounds != 1 || tr.SentAll != tr.Total {
		t.Fatalf("transfer %+v", tr)
	}
}

// propellerProplet follows Propeller's protocol (adapters/mqtt/wire) and nothing more: it asks with
// {"app_name"} and assembles by app_name what comes on registry/server,
// ignoring duplicate indexes.
type propellerProplet struct {
	client paho.Client
	mu     sync.Mutex
	chunks map[string]map[int][]byte
	totals map[string]int
	dups   int
}

func newPropellerProplet(t testing.TB, url string) *propellerProplet {
	t.Helper()
	pp := &propellerProplet{chunks: map[string]map[int][]byte{}, totals: map[string]int{}}
	pp.client = connectClient(t, url, "propeller-proplet")
	tok := pp.client.Subscribe(topics.Topic(wire.SuffixChunk), 1, func(_ paho.Client, msg paho.Message) {
		var c struct {
			AppName     string `json:"app_name"`
			ChunkIdx    int    `json:"chunk_idx"`
			TotalChunks int    `json:"total_chunks"`
			Data        []byte `json:"data"`
		}
		if err := json.Unmarshal(msg.Payload(), &c); err != nil {
			t.Errorf("chunk: %v", err)
			return
		}
		pp.mu.Lock()
		defer pp.mu.Unlock()
		if pp.chunks[c.AppName] == nil {
			pp.chunks[c.AppName] = map[int][]byte{}
		}
		if _, dup := pp.chunks[c.AppName][c.ChunkIdx]; dup {
			pp.dups++
			return
		}
		pp.chunks[c.AppName][c.ChunkIdx], pp.totals[c.AppName] = c.Data, c.TotalChunks
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return pp
}

func (pp *propellerProplet) request(appName string) {
	b, _ := json.Marshal(map[string]string{"app_name": appName})
	pp.client.Publish(topics.Topic(wire.SuffixModuleRequest), 1, false, b).WaitTimeout(wait)
}

func (pp *propellerProplet) assembled(t testing.TB, appName string) []byte {
	t.Helper()
	var out []byte
	natstest.CheckFor(t, longWait, func() error {
		pp.mu.Lock()
		defer pp.mu.Unlock()
		total := pp.totals[appName]
		if total == 0 || len(pp.chunks[appName]) != total {
			return fmt.Errorf("%d of %d chunks", len(pp.chunks[appName]), total)
		}
		out = nil
		for i := range total {
			out = append(out, pp.chunks[appName][i]...)
		}
		return nil
	})
	return out
}

func (pp *propellerProplet) duplicates() int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.dups
}

// TestDelivery_BadChunks: chunks that do not fit together are discarded
// and the module is downloaded afresh, once; when the fresh download is
// bad too, the task fails with a clear error and the cache stays clean.
// A test client forges the chunks on the proplet's own topic; the chunk
// server never sees the requests.
func TestDelivery_BadChunks(t *testing.T) {
	rig := newEngineRig(t, rigOptions{})
	m := newManagerAt(t, rig.ns.MQTTURL())
	cfg := deliveryConfig(t, rig, "proplet-1")
	startProplet(t, cfg, m)
	const chunk = 64 << 10
	tests := []struct {
		name    string
		forge   func(app string, module []byte) []wire.Chunk
		wantErr string
	}{
		{name: "index outside total_chunks",
			forge: func(app string, module []byte) []wire.Chunk {
				return []wire.Chunk{{AppName: app, ChunkIdx: 5, TotalChunks: 3, Data: module[:chunk]}}
			},
			wantErr: "index 5 outside 0..2"},
		{name: "total_chunks changes",
			forge: func(app string, module []byte) []wire.Chunk {
				c := chunksOf(app, module, chunk)
				c[1].TotalChunks = 3
				return c
			},
			wantErr: "total_chunks 3, earlier chunks said 2"},
		{name: "chunks of another module",
			forge: func(app string, _ []byte) []wire.Chunk {
				return chunksOf(app, wasmfixtures.Padded(wasmfixtures.Add(), 100<<10), chunk)
			},
			wantErr: "want " + "sha256:"},
		{name: "module does not hash to its digest",
			forge: func(app string, module []byte) []wire.Chunk {
				bad := slices.Clone(module)
				bad[len(bad)-1] ^= 0xff
				c := chunksOf(app, bad, chunk)
				for i := range c {
					c[i].Digest = digestOf(module)
				}
				return c
			},
			wantErr: "module mismatch: the chunks assemble to sha256:"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			module := wasmfixtures.Padded(wasmfixtures.Add(), 100<<10)
			digest := digestOf(module)
			rig.setHook(func(req wire.ModuleRequest) bool {
				if req.AppName == digest {
					rig.forge(cfg.EntityID, tc.forge(digest, module)...)
				}
				return false
			})
			task := fmt.Sprintf("bad-%d", i)
			m.start(startFor(task, digest, len(module), cfg.EntityID))
			r, raw := waitResultFor(t, m, task, longWait)
			if !strings.Contains(string(r.Error), "bad module chunks") || !strings.Contains(string(r.Error), tc.wantErr) ||
				!strings.Contains(string(r.Error), "again after discarding the chunks") {
				t.Fatalf("result %s, want an error with %q", raw, tc.wantErr)
			}
			if reqs := rig.requestsFor(digest); len(reqs) != 2 {
				t.Fatalf("requests %+v, want the first and one afresh", reqs)
			}
			if got, partial := cached(t, cfg.DataDir); len(got) != 0 || partial != 0 {
				t.Fatalf("cache %v, %d partial chunks", got, partial)
			}
		})
	}
}

// TestDelivery_RecoversFromForgedChunk: a forged chunk that reaches the
// proplet before the real ones spoils the first download; the proplet
// discards it, asks afresh and runs the real module. Nothing else is
// cached.
func TestDelivery_RecoversFromForgedChunk(t *testing.T) {
	tests := []struct {
		name     string
		forge    func(app string, module []byte) wire.Chunk
		rejected uint64
	}{
		{name: "corrupt data, found by the digest", rejected: 0,
			forge: func(app string, module []byte) wire.Chunk {
				c := chunksOf(app, module, 512000)[1]
				c.Data = slices.Clone(c.Data)
				c.Data[0] ^= 0xff
				return c
			}},
		{name: "bad index", rejected: 1,
			forge: func(app string, module []byte) wire.Chunk {
				return wire.Chunk{AppName: app, ChunkIdx: 9, TotalChunks: 3, Data: module[:10]}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rig := newEngineRig(t, rigOptions{})
			m := newManagerAt(t, rig.ns.MQTTURL())
			cfg := deliveryConfig(t, rig, "proplet-1")
			p := startProplet(t, cfg, m)
			size := 1500 << 10
			module := wasmfixtures.Padded(wasmfixtures.Add(), size)
			digest := rig.put(module)
			var once sync.Once
			rig.setHook(func(req wire.ModuleRequest) bool {
				once.Do(func() { rig.forge(cfg.EntityID, tc.forge(digest, module)) })
				return true
			})
			m.start(startFor("forged", digest, size, cfg.EntityID))
			wantFive(t, m, "forged")
			if got, partial := cached(t, cfg.DataDir); !slices.Equal(got, []string{digest}) || partial != 0 {
				t.Fatalf("cache %v, %d partial chunks", got, partial)
			}
			if st := p.Delivery(); st.Requests != 2 || st.Rejected != tc.rejected {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestDelivery_Unavailable: the chunk server answers a module it cannot
// deliver with an error chunk, which fails the task with its reason.
func TestDelivery_Unavailable(t *testing.T) {
	rig := newEngineRig(t, rigOptions{})
	m := newManagerAt(t, rig.ns.MQTTURL())
	cfg := deliveryConfig(t, rig, "proplet-1")
	startProplet(t, cfg, m)
	missing := digestOf([]byte("never stored"))
	m.start(startFor("unavailable", missing, 0, cfg.EntityID))
	r, raw := waitResultFor(t, m, "unavailable", longWait)
	if !strings.Contains(string(r.Error), "proplet: registry error: module \""+missing+"\" cannot be delivered") ||
		!strings.Contains(string(r.Error), "not found") {
		t.Fatalf("result %s", raw)
	}
	if len(rig.requestsFor(missing)) != 1 {
		t.Fatalf("requests %+v", rig.requestsFor(missing))
	}
}

// TestDelivery_FromPropellerProxy: a start the way Propeller's manager
// sends it (an OCI reference, no digest), answered the way Propeller's
// proxy answers (on the shared registry/server topic): the proplet
// assembles it from there and caches it by the digest it hashes to.
func TestDelivery_FromPropellerProxy(t *testing.T) {
	rig := newEngineRig(t, rigOptions{})
	m := newManagerAt(t, rig.ns.MQTTURL())
	cfg := deliveryConfig(t, rig, "proplet-1")
	p := startProplet(t, cfg, m)
	module := wasmfixtures.Padded(wasmfixtures.Add(), 1<<20)
	digest := rig.put(module)
	rig.alias("registry.local/demo/add:v1", digest)
	rig.setHook(func(req wire.ModuleRequest) bool {
		if req.PropletID != "" {
			req.PropletID, req.TaskID, req.Chunks = "", "", nil // what Propeller's proxy reads of it
			rig.server.Request(context.Background(), req)
			return false
		}
		return true
	})
	m.start(wire.StartRequest{ID: "oci", Name: "add", Inputs: wire.Strings{"2", "3"}, ImageURL: "registry.local/demo/add:v1"})
	wantFive(t, m, "oci")
	if got, _ := cached(t, cfg.DataDir); !slices.Equal(got, []string{digest}) {
		t.Fatalf("cache %v", got)
	}
	if tr := rig.waitTransfer(digest, "shared"); tr.SentAll != tr.Total {
		t.Fatalf("shared transfer %+v", tr)
	}
	// Propeller sends no digest: the next start with that name downloads again.
	m.start(wire.StartRequest{ID: "oci-2", Name: "add", Inputs: wire.Strings{"2", "3"}, ImageURL: "registry.local/demo/add:v1"})
	wantFive(t, m, "oci-2")
	if st := p.Delivery(); st.Downloads != 2 || st.CacheHits != 0 {
		t.Fatalf("stats %+v", st)
	}
}
