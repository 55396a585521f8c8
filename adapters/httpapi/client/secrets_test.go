package client_test

import (
	"net/http"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
)

// TestClient_Secrets: set, list and delete round-trip, admin only.
func TestClient_Secrets(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	ctx := t.Context()
	admin := client.New(s.URL, nil, client.WithToken(s.Token(t, domain.RoleAdmin)))
	operator := client.New(s.URL, nil, client.WithToken(s.Token(t, domain.RoleOperator)))
	if _, err := operator.SetSecret(ctx, "db", "v"); client.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("operator sets a secret: %v", err)
	}
	if got, err := admin.SetSecret(ctx, "db", "v1"); err != nil || got.Name != "db" || got.Version != 1 {
		t.Fatalf("set: %+v, %v", got, err)
	}
	if got, err := admin.SetSecret(ctx, "db", "v2"); err != nil || got.Version != 2 {
		t.Fatalf("set again: %+v, %v", got, err)
	}
	page, err := admin.ListSecrets(ctx, 0, 0)
	if err != nil || page.Total != 1 || page.Secrets[0].Name != "db" || page.Secrets[0].Version != 2 {
		t.Fatalf("list: %+v, %v", page, err)
	}
	if err := admin.DeleteSecret(ctx, "db"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := admin.DeleteSecret(ctx, "db"); client.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("delete again: %v", err)
	}
}
