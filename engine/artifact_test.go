package engine_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Digests of made-up modules.
var (
	dA = "sha256:" + strings.Repeat("a", 64)
	dB = "sha256:" + strings.Repeat("b", 64)
	dC = "sha256:" + strings.Repeat("c", 64)
)

// artifactOf folds evs into the artifact "vision", one second and one
// sequence apart.
func artifactOf(evs ...events.Event) engine.Artifact {
	var a engine.Artifact
	for i, ev := range evs {
		env := events.Envelope{
			ID: fmt.Sprintf("e%d", i), Type: ev.EventType(), Aggregate: events.ArtifactAggregate("vision"),
			Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i + 1),
		}
		a = a.Apply(env, ev)
	}
	return a
}

var (
	storedA = events.ArtifactStored{Digest: dA, Size: 100, MediaType: engine.MediaTypeWasm, Source: "upload"}
	storedB = events.ArtifactStored{Digest: dB, Size: 200, MediaType: engine.MediaTypeWasm, Source: "upload"}
	tag1A   = events.ArtifactTagged{Tag: "1.0", Digest: dA}
	latestA = events.ArtifactTagged{Tag: "latest", Digest: dA}
	latestB = events.ArtifactTagged{Tag: "latest", Digest: dB, Previous: dA}

	artNone    = engine.Artifact{}
	artOne     = artifactOf(storedA, tag1A)                            // 1.0 -> A
	artTwoTags = artifactOf(storedA, tag1A, latestA)                   // 1.0, latest -> A
	artMoved   = artifactOf(storedA, tag1A, latestA, storedB, latestB) // 1.0 -> A, latest -> B
	artDeleted = artifactOf(storedA, tag1A, events.ArtifactUntagged{Tag: "1.0", Digest: dA}, events.ArtifactDeleted{})
)

type otherArtifactCommand struct{}

func (otherArtifactCommand) ArtifactName() string { return "vision" }

func TestDecideArtifact(t *testing.T) {
	tagCmd := func(tag, digest string, size int64) engine.TagArtifact {
		return engine.TagArtifact{Name: "vision", Tag: tag, Digest: digest, Size: size, Source: "upload"}
	}
	tests := []struct {
		name     string
		artifact engine.Artifact
		cmd      engine.ArtifactCommand
		want     []events.Event
		wantErr  error
	}{
		{name: "tag new", artifact: artNone, cmd: tagCmd("1.0", dA, 100), want: evs(storedA, tag1A)},
		{name: "tag again: nothing to do", artifact: artOne, cmd: tagCmd("1.0", dA, 100)},
		{name: "second tag, same module", artifact: artOne, cmd: tagCmd("latest", dA, 100), want: evs(latestA)},
		{name: "move a tag to a new module", artifact: artTwoTags, cmd: tagCmd("latest", dB, 200), want: evs(storedB, latestB)},
		{name: "move a tag back to a known module", artifact: artMoved, cmd: tagCmd("latest", dA, 100),
			want: evs(events.ArtifactTagged{Tag: "latest", Digest: dA, Previous: dB})},
		{name: "media type given", artifact: artNone, cmd: engine.TagArtifact{Name: "vision", Tag: "v2", Digest: dC, Size: 9, MediaType: "application/vnd.wasm.content.layer.v1+wasm", Source: "ghcr.io/x/vision:2"},
			want: evs(events.ArtifactStored{Digest: dC, Size: 9, MediaType: "application/vnd.wasm.content.layer.v1+wasm", Source: "ghcr.io/x/vision:2"}, events.ArtifactTagged{Tag: "v2", Digest: dC})},
		{name: "tag a deleted name: a new start", artifact: artDeleted, cmd: tagCmd("1.0", dA, 100), want: evs(storedA, tag1A)},
		{name: "known digest, other size", artifact: artOne, cmd: tagCmd("2.0", dA, 101), wantErr: domain.ErrInvalid},
		{name: "bad digest", artifact: artNone, cmd: tagCmd("1.0", "sha256:ABC", 100), wantErr: domain.ErrInvalid},
		{name: "upper-case digest", artifact: artNone, cmd: tagCmd("1.0", strings.ToUpper(dA), 100), wantErr: domain.ErrInvalid},
		{name: "no size", artifact: artNone, cmd: tagCmd("1.0", dA, 0), wantErr: domain.ErrInvalid},
		{name: "empty tag", artifact: artNone, cmd: tagCmd("", dA, 100), wantErr: domain.ErrInvalid},
		{name: "tag starting with a dot", artifact: artNone, cmd: tagCmd(".x", dA, 100), wantErr: domain.ErrInvalid},
		{name: "tag with a slash", artifact: artNone, cmd: tagCmd("a/b", dA, 100), wantErr: domain.ErrInvalid},
		{name: "name with a colon", artifact: artNone, cmd: engine.TagArtifact{Name: "vision:1", Tag: "1", Digest: dA, Size: 1}, wantErr: domain.ErrInvalid},
		{name: "name with a dot", artifact: artNone, cmd: engine.TagArtifact{Name: "a.b", Tag: "1", Digest: dA, Size: 1}, wantErr: domain.ErrInvalid},
		{name: "name sha256", artifact: artNone, cmd: engine.TagArtifact{Name: "sha256", Tag: "1", Digest: dA, Size: 1}, wantErr: domain.ErrInvalid},
		{name: "empty name", artifact: artNone, cmd: engine.TagArtifact{Tag: "1", Digest: dA, Size: 1}, wantErr: domain.ErrInvalid},

		{name: "untag one of two", artifact: artTwoTags, cmd: engine.UntagArtifact{Name: "vision", Tag: "1.0"},
			want: evs(events.ArtifactUntagged{Tag: "1.0", Digest: dA})},
		{name: "untag the last tag deletes", artifact: artOne, cmd: engine.UntagArtifact{Name: "vision", Tag: "1.0"},
			want: evs(events.ArtifactUntagged{Tag: "1.0", Digest: dA}, events.ArtifactDeleted{})},
		{name: "untag at the checked version", artifact: artTwoTags, cmd: engine.UntagArtifact{Name: "vision", Tag: "1.0", Version: 3},
			want: evs(events.ArtifactUntagged{Tag: "1.0", Digest: dA})},
		{name: "untag after a change", artifact: artTwoTags, cmd: engine.UntagArtifact{Name: "vision", Tag: "1.0", Version: 2}, wantErr: events.ErrConflict},
		{name: "untag unknown tag", artifact: artOne, cmd: engine.UntagArtifact{Name: "vision", Tag: "9"}, wantErr: domain.ErrNotFound},
		{name: "untag unknown artifact", artifact: artNone, cmd: engine.UntagArtifact{Name: "vision", Tag: "1.0"}, wantErr: domain.ErrNotFound},
		{name: "untag deleted artifact", artifact: artDeleted, cmd: engine.UntagArtifact{Name: "vision", Tag: "1.0"}, wantErr: domain.ErrNotFound},

		{name: "delete: every tag, sorted, then deleted", artifact: artMoved, cmd: engine.DeleteArtifact{Name: "vision"},
			want: evs(events.ArtifactUntagged{Tag: "1.0", Digest: dA}, events.ArtifactUntagged{Tag: "latest", Digest: dB}, events.ArtifactDeleted{})},
		{name: "delete after a change", artifact: artMoved, cmd: engine.DeleteArtifact{Name: "vision", Version: 1}, wantErr: events.ErrConflict},
		{name: "delete unknown", artifact: artNone, cmd: engine.DeleteArtifact{Name: "vision"}, wantErr: domain.ErrNotFound},
		{name: "delete deleted", artifact: artDeleted, cmd: engine.DeleteArtifact{Name: "vision"}, wantErr: domain.ErrNotFound},
		{name: "unknown command", artifact: artOne, cmd: otherArtifactCommand{}, wantErr: domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.DecideArtifact(tc.artifact, tc.cmd)
			checkErr(t, err, tc.wantErr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestDecideArtifact_Deterministic: a delete of many tags decides the same
// events every time, whatever order the tags map iterates in.
func TestDecideArtifact_Deterministic(t *testing.T) {
	evList := []events.Event{storedA}
	for i := range 50 {
		evList = append(evList, events.ArtifactTagged{Tag: fmt.Sprintf("t%02d", 49-i), Digest: dA})
	}
	a := artifactOf(evList...)
	first, err := engine.DecideArtifact(a, engine.DeleteArtifact{Name: "vision"})
	if err != nil || len(first) != 51 {
		t.Fatalf("%d events, %v", len(first), err)
	}
	if u := first[0].(events.ArtifactUntagged); u.Tag != "t00" {
		t.Fatalf("first untag %q, want t00 (sorted)", u.Tag)
	}
	for range 20 {
		again, _ := engine.DecideArtifact(a, engine.DeleteArtifact{Name: "vision"})
		if !reflect.DeepEqual(again, first) {
			t.Fatalf("decided differently:\n%v\n%v", again, first)
		}
	}
}

func TestArtifact_Apply(t *testing.T) {
	t.Run("moved tag keeps its history", func(t *testing.T) {
		a := artMoved
		if !a.Exists() || a.Name != "vision" || a.Seq != 5 || !a.CreatedAt.Equal(t0) || !a.UpdatedAt.Equal(t0.Add(4*time.Second)) {
			t.Fatalf("artifact %+v", a)
		}
		if want := map[string]string{"1.0": dA, "latest": dB}; !reflect.DeepEqual(a.Tags, want) {
			t.Fatalf("tags %v, want %v", a.Tags, want)
		}
		want := []engine.TagChange{
			{Tag: "latest", Digest: dA, Time: t0.Add(2 * time.Second)},
			{Tag: "latest", Digest: dB, Previous: dA, Time: t0.Add(4 * time.Second)},
		}
		sameState(t, "latest's history", a.TagHistory("latest"), want)
		row, ok := a.Lookup("latest")
		wantRow := engine.ArtifactTag{Name: "vision", Tag: "latest", Digest: dB, Size: 200, MediaType: engine.MediaTypeWasm, Source: "upload", Created: t0.Add(4 * time.Second)}
		if !ok || !reflect.DeepEqual(row, wantRow) {
			t.Fatalf("lookup %+v %v, want %+v", row, ok, wantRow)
		}
		if rows := a.Rows(); len(rows) != 2 || rows[0].Tag != "1.0" || rows[1].Tag != "latest" || rows[0].Size != 100 {
			t.Fatalf("rows %+v", rows)
		}
	})
	t.Run("apply never changes the state it was given", func(t *testing.T) {
		before := artifactOf(storedA, tag1A, latestA)
		snapshot := artifactOf(storedA, tag1A, latestA)
		env := events.Envelope{Aggregate: events.ArtifactAggregate("vision"), Seq: 9, Time: t0}
		_ = before.Apply(env, storedB)
		_ = before.Apply(env, latestB)
		_ = before.Apply(env, events.ArtifactUntagged{Tag: "1.0", Digest: dA})
		_ = before.Apply(env, events.ArtifactDeleted{})
		sameState(t, "state after other applies", before, snapshot)
	})
	t.Run("deleted", func(t *testing.T) {
		a := artDeleted
		if a.Exists() || !a.Deleted || a.Tags != nil || a.Modules != nil || len(a.History) != 2 {
			t.Fatalf("deleted %+v", a)
		}
		if _, ok := a.Lookup("1.0"); ok {
			t.Fatal("lookup found a tag of a deleted artifact")
		}
	})
	t.Run("used again after a delete", func(t *testing.T) {
		a := artifactOf(storedA, tag1A, events.ArtifactUntagged{Tag: "1.0", Digest: dA}, events.ArtifactDeleted{}, storedB, events.ArtifactTagged{Tag: "2.0", Digest: dB})
		if !a.Exists() || !a.CreatedAt.Equal(t0.Add(4*time.Second)) || len(a.Modules) != 1 || len(a.History) != 3 {
			t.Fatalf("reused %+v", a)
		}
	})
}

func TestParseArtifactRef(t *testing.T) {
	tests := []struct {
		in      string
		want    engine.ArtifactRef
		wantErr error
	}{
		{in: "vision:1.2", want: engine.ArtifactRef{Name: "vision", Tag: "1.2"}},
		{in: "vision", want: engine.ArtifactRef{Name: "vision", Tag: "latest"}},
		{in: "my-model_2:v1.0-rc_1", want: engine.ArtifactRef{Name: "my-model_2", Tag: "v1.0-rc_1"}},
		{in: dA, want: engine.ArtifactRef{Digest: dA}},
		{in: "sha256:abc", wantErr: domain.ErrInvalid},
		{in: "vision:", wantErr: domain.ErrInvalid},
		{in: ":1.2", wantErr: domain.ErrInvalid},
		{in: "", wantErr: domain.ErrInvalid},
		{in: "vision:1:2", wantErr: domain.ErrInvalid},
		{in: "ghcr.io/x/vision:1", wantErr: domain.ErrInvalid},
		{in: "localhost:5000/demo/add:v2", wantErr: domain.ErrInvalid},
		{in: "a>b", wantErr: domain.ErrInvalid},
		{in: "vision:" + strings.Repeat("x", 129), wantErr: domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := engine.ParseArtifactRef(tc.in)
			checkErr(t, err, tc.wantErr)
			if err != nil {
				return
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if back, err := engine.ParseArtifactRef(got.String()); err != nil || back != got {
				t.Fatalf("%q reads back as %+v, %v", got, back, err)
			}
		})
	}
}
