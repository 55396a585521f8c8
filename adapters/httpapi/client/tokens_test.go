package client_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestClient_Token: every kind of request carries the token (JSON calls,
// streamed uploads, the event stream), and the token API round-trips.
func TestClient_Token(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	ctx := t.Context()
	as := func(role domain.Role) *client.Client {
		return client.New(s.URL, nil, client.WithToken(s.Token(t, role)+"\n"))
	}
	if _, err := client.New(s.URL, nil).ListTasks(ctx, 0, 0); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("no token: %v", err)
	}
	if _, err := client.New(s.URL, nil, client.WithToken("")).Health(ctx); err != nil {
		t.Fatalf("health without a token: %v", err)
	}
	viewer, operator, admin := as(domain.RoleViewer), as(domain.RoleOperator), as(domain.RoleAdmin)
	if _, err := viewer.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()}); client.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("viewer creates a task: %v", err)
	}

	task, err := operator.CreateTask(ctx, httpapi.TaskRequest{Name: "add"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := operator.UploadModule(ctx, task.ID, bytes.NewReader(wasmfixtures.Add())); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if _, err := operator.PushArtifact(ctx, "add", "1", bytes.NewReader(wasmfixtures.Add()), 0, nil); err != nil {
		t.Fatalf("push: %v", err)
	}
	n := 0
	if err := viewer.Events(ctx, false, func(events.Envelope) error { n++; return nil }); err != nil || n == 0 {
		t.Fatalf("events: %d, %v", n, err)
	}

	if _, err := operator.CreateToken(ctx, "ci", domain.RoleViewer); client.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("operator creates a token: %v", err)
	}
	nt, err := admin.CreateToken(ctx, "ci", domain.RoleViewer)
	if err != nil || nt.Secret == "" || nt.Role != domain.RoleViewer {
		t.Fatalf("create %+v, %v", nt, err)
	}
	ci := client.New(s.URL, nil, client.WithToken(nt.Secret))
	if _, err := ci.ListTasks(ctx, 0, 0); err != nil {
		t.Fatalf("new token: %v", err)
	}
	if l, err := admin.ListTokens(ctx, 0, 0); err != nil || l.Total != 4 {
		t.Fatalf("list %+v, %v", l, err)
	}
	if err := admin.RevokeToken(ctx, nt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ci.ListTasks(ctx, 0, 0); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("revoked token: %v", err)
	}
	if got, err := admin.GetToken(ctx, nt.ID); err != nil || !got.Revoked {
		t.Fatalf("get %+v, %v", got, err)
	}
}
