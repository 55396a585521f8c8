package projections_test

import (
	"reflect"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

func TestSecrets(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store)
	last := map[string]engine.Secret{}
	for _, c := range []engine.SecretCommand{
		engine.SetSecret{Name: "zeta", Ciphertext: []byte("z1"), KeyID: "k1"},
		engine.SetSecret{Name: "alpha", Ciphertext: []byte("a1"), KeyID: "k1", By: "tk1"},
		engine.SetSecret{Name: "gone", Ciphertext: []byte("g1"), KeyID: "k1"},
		engine.SetSecret{Name: "alpha", Ciphertext: []byte("a2"), KeyID: "k1"},
		engine.DeleteSecret{Name: "gone", By: "tk1"},
	} {
		s, err := h.Secret(testCtx(t), c)
		if err != nil {
			t.Fatalf("%#v: %v", c, err)
		}
		last[c.SecretName()] = s
	}
	p := projections.NewSecrets(codec)
	if err := projections.Catchup(testCtx(t), store, p); err != nil {
		t.Fatal(err)
	}
	for name, want := range last {
		if got, ok := p.Get(name); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%s) = %+v %v, want the handler's %+v", name, got, ok, want)
		}
	}
	all, total := p.List(0, 10)
	if total != 2 || len(all) != 2 || all[0].Name != "alpha" || all[0].Version != 2 || string(all[0].Ciphertext) != "a2" || all[1].Name != "zeta" {
		t.Fatalf("List = %+v (%d): want alpha v2 and zeta, not the deleted one", all, total)
	}
	if page, total := p.List(1, 1); total != 2 || len(page) != 1 || page[0].Name != "zeta" {
		t.Fatalf("List(1, 1) = %+v (%d)", page, total)
	}
	if page, _ := p.List(5, 10); len(page) != 0 {
		t.Fatalf("List past the end = %+v", page)
	}
	if g, ok := p.Get("gone"); !ok || g.Exists() || g.Ciphertext != nil {
		t.Fatalf("Get(gone) = %+v %v", g, ok)
	}
}
