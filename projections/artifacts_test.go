package projections_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
)

func tagArt(name, tag, digest string) engine.TagArtifact {
	return engine.TagArtifact{Name: name, Tag: tag, Digest: digest, Size: int64(len(name) + len(tag)), Source: "upload"}
}

// artifactScenario writes a catalog's history: a tag moved, a name deleted,
// a name used again after its delete. It returns the handler's last state
// of every name.
func artifactScenario(t testing.TB, store events.Store) map[string]engine.Artifact {
	t.Helper()
	h := newHandler(store)
	last := map[string]engine.Artifact{}
	cmds := []engine.ArtifactCommand{
		engine.TagArtifact{Name: "vision", Tag: "1.0", Digest: digestA, Size: 10},
		engine.TagArtifact{Name: "vision", Tag: "latest", Digest: digestA, Size: 10},
		engine.TagArtifact{Name: "vision", Tag: "latest", Digest: digestB, Size: 20}, // moved
		engine.TagArtifact{Name: "add", Tag: "v1", Digest: digestA, Size: 10},
		engine.TagArtifact{Name: "gone", Tag: "1", Digest: digestB, Size: 20},
		engine.DeleteArtifact{Name: "gone"},
		engine.TagArtifact{Name: "again", Tag: "1", Digest: digestA, Size: 10},
		engine.UntagArtifact{Name: "again", Tag: "1"},
		engine.TagArtifact{Name: "again", Tag: "2", Digest: digestB, Size: 20},
	}
	for _, c := range cmds {
		a, err := h.Artifact(testCtx(t), c)
		if err != nil {
			t.Fatalf("%#v: %v", c, err)
		}
		last[c.ArtifactName()] = a
	}
	return last
}

func rowRefs(rows []engine.ArtifactTag) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Name + ":" + r.Tag + "@" + r.Digest[7:8]
	}
	return out
}

func TestArtifacts(t *testing.T) {
	store := events.NewMemory()
	want := artifactScenario(t, store)
	p := projections.NewArtifacts(codec)
	if err := projections.Catchup(testCtx(t), store, p); err != nil {
		t.Fatal(err)
	}

	rows, total := p.List(0, 100)
	if got, wantRows := rowRefs(rows), []string{"add:v1@a", "again:2@b", "vision:1.0@a", "vision:latest@b"}; total != 4 || !slices.Equal(got, wantRows) {
		t.Fatalf("List = %v (%d), want %v", got, total, wantRows)
	}
	for name, a := range want {
		got, ok := p.Get(name)
		if name == "gone" {
			if ok {
				t.Errorf("Get(gone) found a deleted artifact: %+v", got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, a) {
			t.Errorf("Get(%s) = %+v, %v\nwant the handler's %+v", name, got, ok, a)
		}
	}
	if got := rowRefs(p.Tagged(digestA)); !slices.Equal(got, []string{"add:v1@a", "vision:1.0@a"}) {
		t.Errorf("Tagged(A) = %v", got)
	}
	if got := p.Tagged("sha256:" + strings.Repeat("c", 64)); len(got) != 0 {
		t.Errorf("Tagged(unknown) = %v", got)
	}
	if row, ok := p.Resolve("vision", "latest"); !ok || row.Digest != digestB || row.Size != 20 {
		t.Errorf("Resolve(vision:latest) = %+v, %v", row, ok)
	}
	if _, ok := p.Resolve("gone", "1"); ok {
		t.Error("Resolve(gone:1) found a deleted tag")
	}
	if a, _ := p.Get("again"); len(a.History) != 3 {
		t.Errorf("history of a name used again: %+v", a.History)
	}
	last, _ := store.LastSeq(testCtx(t), events.KindArtifact)
	if p.LastSeq() != last {
		t.Errorf("LastSeq() = %d, want %d", p.LastSeq(), last)
	}

	t.Run("pages", func(t *testing.T) {
		for _, tc := range []struct {
			offset, limit int
			want          []string
		}{
			{1, 2, []string{"again:2@b", "vision:1.0@a"}},
			{3, 10, []string{"vision:latest@b"}},
			{9, 1, []string{}},
			{-1, 1, []string{"add:v1@a"}},
			{0, int(^uint(0) >> 1), []string{"add:v1@a", "again:2@b", "vision:1.0@a", "vision:latest@b"}},
		} {
			if got, n := p.List(tc.offset, tc.limit); n != 4 || !slices.Equal(rowRefs(got), tc.want) {
				t.Errorf("List(%d, %d) = %v", tc.offset, tc.limit, rowRefs(got))
			}
		}
	})
	t.Run("redelivered events change nothing", func(t *testing.T) {
		before, _ := p.List(0, 100)
		err := store.Replay(testCtx(t), events.KindArtifact, 1, p.Apply)
		if after, _ := p.List(0, 100); err != nil || !reflect.DeepEqual(before, after) {
			t.Fatalf("after a second replay: %v, %v", rowRefs(after), err)
		}
	})
}

// TestArtifacts_Follow keeps a projection current from JetStream and waits
// for a write to show, the way the service does.
func TestArtifacts_Follow(t *testing.T) {
	nc, _ := natstest.Connect(t, natstest.Start(t))
	store, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := projections.NewArtifacts(codec)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := projections.Follow(ctx, store, p); err != nil {
			t.Errorf("follow: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	h := newHandler(store)
	a, err := h.Artifact(testCtx(t), tagArt("vision", "1.2", digestA))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(testCtx(t), a.Seq); err != nil {
		t.Fatal(err)
	}
	if row, ok := p.Resolve("vision", "1.2"); !ok || row.Digest != digestA {
		t.Fatalf("Resolve = %+v, %v", row, ok)
	}
}
