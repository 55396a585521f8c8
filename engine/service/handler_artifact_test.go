package service_test

import (
	"reflect"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TestHandler_Artifact runs commands through the handler on both stores and
// checks that the stored events fold to the state the handler returned.
func TestHandler_Artifact(t *testing.T) {
	for name, store := range map[string]events.Store{"memory": events.NewMemory(), "jetstream": newJetStream(t)} {
		t.Run(name, func(t *testing.T) {
			ctx, h := testCtx(t), newHandler(store, "art-")
			steps := []engine.ArtifactCommand{
				engine.TagArtifact{Name: "vision", Tag: "1.0", Digest: dA, Size: 100},
				engine.TagArtifact{Name: "vision", Tag: "latest", Digest: dA, Size: 100},
				engine.TagArtifact{Name: "vision", Tag: "latest", Digest: dB, Size: 200},
				engine.TagArtifact{Name: "vision", Tag: "latest", Digest: dB, Size: 200}, // no-op
				engine.UntagArtifact{Name: "vision", Tag: "1.0"},
			}
			var last engine.Artifact
			for _, c := range steps {
				var err error
				if last, err = h.Artifact(ctx, c); err != nil {
					t.Fatalf("%#v: %v", c, err)
				}
			}
			envs := load(t, store, events.ArtifactAggregate("vision"))
			want := []string{"artifact.stored", "artifact.tagged", "artifact.tagged", "artifact.stored", "artifact.tagged", "artifact.untagged"}
			if got := types(envs); !reflect.DeepEqual(got, want) {
				t.Fatalf("types %v, want %v", got, want)
			}
			folded, err := engine.Fold(codec, engine.Artifact{}, envs)
			if err != nil {
				t.Fatal(err)
			}
			sameState(t, "folded", folded, last)
			loaded, err := h.LoadArtifact(ctx, "vision")
			if err != nil {
				t.Fatal(err)
			}
			sameState(t, "loaded", loaded, last)

			_, err = h.Artifact(ctx, engine.UntagArtifact{Name: "vision", Tag: "latest", Version: last.Seq - 1})
			checkErr(t, err, events.ErrConflict)
			gone, err := h.Artifact(ctx, engine.DeleteArtifact{Name: "vision", Version: last.Seq})
			if err != nil || gone.Exists() {
				t.Fatalf("delete: %+v %v", gone, err)
			}
			_, err = h.Artifact(ctx, engine.TagArtifact{Name: "a.b", Tag: "1", Digest: dA, Size: 1})
			checkErr(t, err, domain.ErrInvalid)
		})
	}
}
