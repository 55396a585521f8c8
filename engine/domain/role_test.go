package domain_test

import (
	"testing"

	"github.com/jetprop/jetprop/engine/domain"
)

func TestRole_AtLeast(t *testing.T) {
	roles := domain.Roles()
	for i, have := range roles {
		for j, need := range roles {
			if got := have.AtLeast(need); got != (i >= j) {
				t.Errorf("%s.AtLeast(%s) = %v", have, need, got)
			}
		}
		if r, err := domain.ParseRole(string(have)); r != have || err != nil {
			t.Errorf("ParseRole(%q) = %q, %v", have, r, err)
		}
	}
	if domain.Role("").AtLeast(domain.RoleViewer) || domain.Role("root").AtLeast(domain.RoleViewer) {
		t.Fatal("an invalid role is at least viewer")
	}
	if _, err := domain.ParseRole("Admin"); err == nil {
		t.Fatal("ParseRole accepts Admin")
	}
}
