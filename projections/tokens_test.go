package projections_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

func TestTokens(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store)
	hash := func(s string) string { return engine.HashToken(s) }
	last := map[string]engine.Token{}
	for _, c := range []engine.TokenCommand{
		engine.CreateToken{ID: "t1", Name: "bootstrap", Role: domain.RoleAdmin, Hash: hash("one")},
		engine.CreateToken{ID: "t2", Name: "ci", Role: domain.RoleOperator, Hash: hash("two"), By: "t1"},
		engine.CreateToken{ID: "t3", Name: "grafana", Role: domain.RoleViewer, Hash: hash("three"), By: "t1"},
		engine.RevokeToken{ID: "t2", By: "t1"},
	} {
		tok, err := h.Token(testCtx(t), c)
		if err != nil {
			t.Fatalf("%#v: %v", c, err)
		}
		last[c.TokenID()] = tok
	}
	p := projections.NewTokens(codec)
	if err := projections.Catchup(testCtx(t), store, p); err != nil {
		t.Fatal(err)
	}

	all, total := p.List(0, 10)
	if total != 3 || len(all) != 3 || all[0].ID != "t1" || all[1].ID != "t2" || all[2].ID != "t3" {
		t.Fatalf("List = %+v (%d)", all, total)
	}
	for id, want := range last {
		if got, ok := p.Get(id); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%s) = %+v %v, want the handler's %+v", id, got, ok, want)
		}
	}
	if page, total := p.List(1, 1); total != 3 || len(page) != 1 || page[0].ID != "t2" {
		t.Fatalf("List(1, 1) = %+v (%d)", page, total)
	}
	if page, _ := p.List(5, 10); len(page) != 0 {
		t.Fatalf("List past the end = %+v", page)
	}

	tests := []struct {
		name, secret, wantID string
	}{
		{"active admin", "one", "t1"},
		{"revoked", "two", ""},
		{"active viewer", "three", "t3"},
		{"unknown", "four", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := p.ByHash(hash(tc.secret))
			if ok != (tc.wantID != "") || got.ID != tc.wantID {
				t.Fatalf("ByHash = %+v %v, want %q", got, ok, tc.wantID)
			}
			if upper, ok2 := p.ByHash(strings.ToUpper(hash(tc.secret))); ok2 != ok || upper.ID != got.ID {
				t.Fatalf("ByHash of the upper-case hash = %+v %v", upper, ok2)
			}
		})
	}
}
