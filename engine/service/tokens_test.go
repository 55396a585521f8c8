package service_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/replay"
)

// newTokenService is a service with the tokens read model, following an
// in-memory store.
func newTokenService(t *testing.T) (*service.Service, *projections.Tokens) {
	t.Helper()
	store := events.NewMemory()
	tokens := projections.NewTokens(codec)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := projections.Follow(ctx, store, tokens); err != nil {
			t.Errorf("follow tokens: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	h := service.NewHandler(store, codec, service.SystemClock{}, replay.NewSeqIDs("tk-"))
	return service.New(h, nil, nil, nil, service.WithTokens(tokens)), tokens
}

func TestService_Tokens(t *testing.T) {
	svc, _ := newTokenService(t)
	ctx := testCtx(t)
	admin, err := svc.CreateToken(ctx, " root ", domain.RoleAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	if !engine.WellFormedToken(admin.Secret) || admin.Name != "root" || admin.Hash != engine.HashToken(admin.Secret) || strings.Contains(admin.Hash, admin.Secret) {
		t.Fatalf("created %+v", admin)
	}
	ci, err := svc.CreateToken(ctx, "ci", domain.RoleOperator, admin.ID)
	if err != nil || ci.CreatedBy != admin.ID || ci.Secret == admin.Secret {
		t.Fatalf("created %+v, %v", ci, err)
	}

	// Authenticate right after the create: the read model already knows it.
	if got, err := svc.Authenticate(ci.Secret); err != nil || got.ID != ci.ID || got.Role != domain.RoleOperator {
		t.Fatalf("Authenticate(ci) = %+v, %v", got, err)
	}
	revoked, err := svc.RevokeToken(ctx, ci.ID, admin.ID)
	if err != nil || !revoked.Revoked || revoked.RevokedBy != admin.ID {
		t.Fatalf("revoke: %+v, %v", revoked, err)
	}
	// ... and refused right after the revocation returns.
	if _, err := svc.Authenticate(ci.Secret); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("Authenticate(revoked) = %v", err)
	}
	if _, err := svc.RevokeToken(ctx, ci.ID, admin.ID); err != nil {
		t.Fatalf("revoke again: %v", err)
	}
	if _, err := svc.RevokeToken(ctx, "nope", admin.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if _, err := svc.CreateToken(ctx, "x", "root", admin.ID); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("create with role root: %v", err)
	}
	list, total := svc.ListTokens(0, 10)
	if total != 2 || list[0].ID != admin.ID || !list[1].Revoked {
		t.Fatalf("list %+v (%d)", list, total)
	}
	if got, err := svc.GetToken(ci.ID); err != nil || !got.Revoked {
		t.Fatalf("get %+v, %v", got, err)
	}

	for name, secret := range map[string]string{
		"empty": "", "malformed": "Bearer " + admin.Secret, "hash": admin.Hash,
		"unknown": engine.FormatToken(make([]byte, engine.TokenBytes)),
	} {
		if _, err := svc.Authenticate(secret); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("Authenticate(%s) = %v", name, err)
		}
	}
}

func TestService_BootstrapToken(t *testing.T) {
	svc, _ := newTokenService(t)
	ctx := testCtx(t)
	var saved string
	save := func(s string) error { saved = s; return nil }

	first, created, err := svc.BootstrapToken(ctx, save)
	if err != nil || !created || first.Role != domain.RoleAdmin || first.Name != service.BootstrapName || saved != first.Secret {
		t.Fatalf("bootstrap: %+v %v %v (saved %q)", first, created, err, saved)
	}
	if _, err := svc.Authenticate(saved); err != nil {
		t.Fatalf("the saved secret does not authenticate: %v", err)
	}
	if _, created, err := svc.BootstrapToken(ctx, save); created || err != nil {
		t.Fatalf("second bootstrap with an active admin: created %v, %v", created, err)
	}
	// An operator token is no admin: revoking every admin bootstraps again.
	if _, err := svc.CreateToken(ctx, "ci", domain.RoleOperator, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RevokeToken(ctx, first.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	second, created, err := svc.BootstrapToken(ctx, save)
	if err != nil || !created || second.ID == first.ID || saved != second.Secret {
		t.Fatalf("bootstrap after revoking every admin: %+v %v %v", second, created, err)
	}

	// A secret that cannot be saved is never recorded.
	if _, err := svc.RevokeToken(ctx, second.ID, ""); err != nil {
		t.Fatal(err)
	}
	before, _ := svc.ListTokens(0, 100)
	boom := errors.New("disk full")
	if _, created, err := svc.BootstrapToken(ctx, func(string) error { return boom }); created || !errors.Is(err, boom) {
		t.Fatalf("bootstrap with a failing save: created %v, %v", created, err)
	}
	if after, _ := svc.ListTokens(0, 100); len(after) != len(before) {
		t.Fatalf("%d tokens after a failed save, %d before", len(after), len(before))
	}
}

func TestService_TokensWithoutReadModel(t *testing.T) {
	h := service.NewHandler(events.NewMemory(), codec, service.SystemClock{}, replay.NewSeqIDs("tk-"))
	svc := service.New(h, nil, nil, nil)
	if _, err := svc.CreateToken(testCtx(t), "ci", domain.RoleViewer, ""); !errors.Is(err, domain.ErrUnsupported) {
		t.Fatalf("create: %v", err)
	}
	if _, err := svc.Authenticate(engine.FormatToken(make([]byte, engine.TokenBytes))); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("authenticate: %v", err)
	}
}
