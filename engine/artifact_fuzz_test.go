package engine_test

import (
	"errors"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// FuzzParseArtifactRef: a reference from a client (a path, a workflow
// step's module, an image_url) either parses into one that writes back to
// itself, or is refused with domain.ErrInvalid; never a panic.
func FuzzParseArtifactRef(f *testing.F) {
	for _, s := range []string{"add", "add:1", "add:1.2-rc_3", "sha256:" + string(make([]byte, 64)),
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "a:b:c", ":", "a:", ":b",
		"a@b", "sha256", "sha256:", "a:.x", "a:-x", "é:1", "a\x00:1", "ghcr.io/org/x:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := engine.ParseArtifactRef(s)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("ParseArtifactRef(%q): %v is not ErrInvalid", s, err)
			}
			return
		}
		again, err := engine.ParseArtifactRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseArtifactRef(%q) = %#v, written %q, read back %#v, %v", s, r, r.String(), again, err)
		}
	})
}
