package outbound_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine/domain"
)

func TestChunkSizeFor(t *testing.T) {
	tests := []struct {
		name             string
		want, maxPayload int
		out              int
	}{
		{"default fits 1 MiB", 0, 1 << 20, outbound.DefaultChunkSize},
		{"capped by payload", 1 << 20, 1 << 20, (1<<20 - 4096) / 4 * 3},
		{"small payload", 0, 64 << 10, (64<<10 - 4096) / 4 * 3},
		{"no payload known", 4096, 0, 4096},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := outbound.ChunkSizeFor(tc.want, tc.maxPayload); got != tc.out {
				t.Fatalf("got %d, want %d", got, tc.out)
			}
		})
	}
}

// fakes of the chunk server's ports, recording what they are told.
type (
	published struct {
		suffix string
		chunk  wire.Chunk
	}
	fakePub struct {
		mu   sync.Mutex
		msgs []published
	}
	doneToken struct{}
	modules   map[string][]byte // by digest
	fakeProg  struct {
		mu    sync.Mutex
		calls []string
		done  chan struct{} // closed at the first Completed or Failed
		once  sync.Once
	}
	fakeTasks struct {
		mu     sync.Mutex
		failed []string
	}
)

func (doneToken) Wait() bool                                      { return true }
func (doneToken) WaitTimeout(time.Duration) bool                  { return true }
func (doneToken) Done() <-chan struct{}                           { ch := make(chan struct{}); close(ch); return ch }
func (doneToken) Error() error                                    { return nil }
func (p *fakePub) Wait(context.Context, string, paho.Token) error { return nil }

func (p *fakePub) PublishAsync(suffix string, v any) (paho.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, published{suffix, v.(wire.Chunk)})
	return doneToken{}, nil
}

func (p *fakePub) all() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

func (m modules) ResolveModule(_ context.Context, ref string) (string, int64, error) {
	if b, ok := m[ref]; ok {
		return ref, int64(len(b)), nil
	}
	return "", 0, fmt.Errorf("%w: %s", domain.ErrModuleNotFound, ref)
}

func (m modules) Open(_ context.Context, digest string) (io.ReadCloser, int64, error) {
	b := m[digest]
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func newProg() *fakeProg { return &fakeProg{done: make(chan struct{})} }

func (p *fakeProg) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf(format, args...))
}

func (p *fakeProg) end() { p.once.Do(func() { close(p.done) }) }

func (p *fakeProg) Requested(_ context.Context, t outbound.Transfer) error {
	p.add("requested %s %d/%d task=%s", t.ID, t.Requested, t.Total, t.TaskID)
	return nil
}

func (p *fakeProg) Sent(_ context.Context, id string, from, to int) error {
	p.add("sent %s %d..%d", id, from, to)
	return nil
}

func (p *fakeProg) Completed(_ context.Context, id string) error {
	p.add("completed %s", id)
	p.end()
	return nil
}

func (p *fakeProg) Failed(_ context.Context, id, _ string) error {
	p.add("failed %s", id)
	p.end()
	return nil
}

func (t *fakeTasks) FailTask(_ context.Context, id, _ string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = append(t.failed, id)
	return nil
}

// serve runs a chunk server of 1,024-byte chunks on the fakes for one
// request and waits until the transfer completed or failed.
func serve(t *testing.T, ports outbound.ChunkPorts, req wire.ModuleRequest) {
	t.Helper()
	srv := outbound.NewChunkServer(ports, outbound.ChunkConfig{ChunkSize: 1024, Workers: 1, Window: 2}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := srv.Request(ctx, req); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ports.Progress.(*fakeProg).done:
	case <-time.After(10 * time.Second):
		t.Fatal("the transfer neither completed nor failed")
	}
}

// TestChunkServer_Ports serves requests on fakes of every port: what is
// published where, what the progress port is told, and which tasks fail.
func TestChunkServer_Ports(t *testing.T) {
	module := bytes.Repeat([]byte{7}, 2500) // 3 chunks: 1024, 1024, 452
	digest := domain.DigestOf(module)
	id := domain.DigestHex(digest) + ".p1"
	tests := []struct {
		name      string
		req       wire.ModuleRequest
		tasks     bool // a TaskFailer is plugged in
		wantTopic string
		wantIdx   []int
		wantCalls []string
		wantErr   bool // the proplet gets an error chunk
		wantFail  []string
	}{{
		name: "whole module to the proplet that named itself", req: wire.ModuleRequest{AppName: digest, PropletID: "p1", TaskID: "t1"},
		wantTopic: wire.PropletChunkTopic("p1"), wantIdx: []int{0, 1, 2},
		wantCalls: []string{"requested " + id + " 3/3 task=t1", "sent " + id + " 0..2", "completed " + id},
	}, {
		name: "only the chunks asked for", req: wire.ModuleRequest{AppName: digest, PropletID: "p1", Chunks: []int{2, 0, 9, 2}},
		wantTopic: wire.PropletChunkTopic("p1"), wantIdx: []int{0, 2},
		wantCalls: []string{"requested " + id + " 2/3 task=", "sent " + id + " 0..0", "sent " + id + " 2..2", "completed " + id},
	}, {
		name: "a Propeller proplet on the shared topic", req: wire.ModuleRequest{AppName: digest},
		wantTopic: wire.SuffixChunk, wantIdx: []int{0, 1, 2},
		wantCalls: []string{"requested " + domain.DigestHex(digest) + ".shared 3/3 task=", "sent " + domain.DigestHex(digest) + ".shared 0..2", "completed " + domain.DigestHex(digest) + ".shared"},
	}, {
		name: "unknown module fails the transfer and the task", req: wire.ModuleRequest{AppName: "nope:1", PropletID: "p1", TaskID: "t1"},
		tasks: true, wantTopic: wire.PropletChunkTopic("p1"), wantErr: true, wantFail: []string{"t1"},
	}, {
		name: "unknown module without a TaskFailer (the proxy)", req: wire.ModuleRequest{AppName: "nope:1", PropletID: "p1", TaskID: "t1"},
		wantTopic: wire.PropletChunkTopic("p1"), wantErr: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, prog, tasks := &fakePub{}, newProg(), &fakeTasks{}
			ports := outbound.ChunkPorts{Resolver: modules{digest: module}, Opener: modules{digest: module}, Publisher: pub, Progress: prog}
			if tt.tasks {
				ports.Tasks = tasks
			}
			serve(t, ports, tt.req)
			var idx []int
			var got []byte
			for _, m := range pub.all() {
				if m.suffix != tt.wantTopic {
					t.Fatalf("published on %s, want %s", m.suffix, tt.wantTopic)
				}
				if tt.wantErr != (m.chunk.Error != "") {
					t.Fatalf("chunk %+v: error %q", m.chunk.ChunkIdx, m.chunk.Error)
				}
				if m.chunk.Error == "" {
					idx = append(idx, int(m.chunk.ChunkIdx))
					got = append(got, m.chunk.Data...)
				}
			}
			if !slices.Equal(idx, tt.wantIdx) {
				t.Fatalf("chunks %v, want %v", idx, tt.wantIdx)
			}
			if len(tt.wantIdx) == 3 && !bytes.Equal(got, module) {
				t.Fatal("the chunks do not assemble to the module")
			}
			if tt.wantCalls != nil && !slices.Equal(prog.calls, tt.wantCalls) {
				t.Fatalf("progress %q, want %q", prog.calls, tt.wantCalls)
			}
			if tt.wantErr && (len(prog.calls) != 1 || prog.calls[0][:6] != "failed") {
				t.Fatalf("progress %q, want one failure", prog.calls)
			}
			if !slices.Equal(tasks.failed, tt.wantFail) {
				t.Fatalf("failed tasks %v, want %v", tasks.failed, tt.wantFail)
			}
		})
	}
}
