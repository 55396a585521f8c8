package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
)

const (
	apiSecret1 = "first-V4lue-xq"
	apiSecret2 = "second-V4lue-zq"
)

// noValue fails when body holds a value (or its base64).
func noValue(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, v := range []string{apiSecret1, apiSecret2} {
		if bytes.Contains(body, []byte(v)) || bytes.Contains(body, []byte(base64.StdEncoding.EncodeToString([]byte(v)))) {
			t.Fatalf("%s holds a secret's value: %s", what, body)
		}
	}
}

func TestAPI_Secrets(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	url := s.URL + "/secrets/"

	status, body := callJSON(t, http.MethodPut, url+"db", httpapi.SecretRequest{Value: ptr(apiSecret1)})
	wantStatus(t, status, body, http.StatusOK)
	noValue(t, "PUT", body)
	if got := decode[httpapi.Secret](t, body); got.Name != "db" || got.Version != 1 || got.KeyID != s.Sealer.KeyID() || got.UpdatedAt.IsZero() {
		t.Fatalf("PUT answered %+v", got)
	}
	status, body = call(t, http.MethodPut, url+"db", "text/plain", strings.NewReader(apiSecret2))
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Secret](t, body); got.Version != 2 {
		t.Fatalf("PUT of a raw body answered %+v", got)
	}
	if v, err := s.Service.ResolveSecrets(t.Context(), []string{"db"}); err != nil || v["db"] != apiSecret2 {
		t.Fatalf("the raw body is not the value: %q, %v", v, err)
	}
	callJSON(t, http.MethodPut, url+"other", httpapi.SecretRequest{Value: ptr(apiSecret1)})

	status, body = call(t, http.MethodGet, s.URL+"/secrets", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	noValue(t, "GET /secrets", body)
	page := decode[httpapi.SecretList](t, body)
	if page.Total != 2 || len(page.Secrets) != 2 || page.Secrets[0].Name != "db" || page.Secrets[0].Version != 2 || page.Secrets[1].Name != "other" {
		t.Fatalf("GET /secrets = %+v", page)
	}

	task := createTask(t, s, httpapi.TaskRequest{Env: map[string]string{"DB": "${secret:db}"}})
	status, body = call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Task](t, body); got.Env["DB"] != "${secret:db}" {
		t.Fatalf("the task shows env %q, want the reference", got.Env)
	}
	status, body = callJSON(t, http.MethodPost, s.URL+"/tasks", httpapi.TaskRequest{Name: "add", ImageURL: "https://example.com/a.wasm",
		Env: map[string]string{"DB": "${secret:nope}"}})
	wantStatus(t, status, body, http.StatusBadRequest)
	if !strings.Contains(string(body), `unknown secret \"nope\"`) {
		t.Fatalf("create with an unknown secret: %s", body)
	}

	for _, kind := range []string{"", "?kind=secret"} {
		status, body = call(t, http.MethodGet, s.URL+"/events"+kind, "", nil)
		wantStatus(t, status, body, http.StatusOK)
		noValue(t, "GET /events"+kind, body)
		if !strings.Contains(string(body), `"secret.set"`) {
			t.Fatalf("GET /events%s shows no secret.set in dev mode: %s", kind, body)
		}
	}

	status, body = call(t, http.MethodDelete, url+"db", "", nil)
	wantStatus(t, status, body, http.StatusNoContent)
	status, body = call(t, http.MethodDelete, url+"db", "", nil)
	wantStatus(t, status, body, http.StatusNotFound)
	status, body = call(t, http.MethodGet, s.URL+"/secrets?limit=1", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if page := decode[httpapi.SecretList](t, body); page.Total != 1 || page.Secrets[0].Name != "other" {
		t.Fatalf("after the delete: %+v", page)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAPI_SetSecretRefused(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	tests := []struct {
		name, path, contentType, body string
		want                          int
	}{
		{"bad name", "/secrets/a.b", "application/json", `{"value":"` + apiSecret1 + `"}`, http.StatusBadRequest},
		{"name too long", "/secrets/" + strings.Repeat("n", 65), "text/plain", apiSecret1, http.StatusBadRequest},
		{"empty value", "/secrets/db", "application/json", `{"value":""}`, http.StatusBadRequest},
		{"empty raw body", "/secrets/db", "text/plain", "", http.StatusBadRequest},
		{"no value field", "/secrets/db", "application/json", `{}`, http.StatusBadRequest},
		{"unknown field", "/secrets/db", "application/json", `{"value":"` + apiSecret1 + `","x":1}`, http.StatusBadRequest},
		{"NUL", "/secrets/db", "application/json", `{"value":"` + apiSecret1 + `\u0000"}`, http.StatusBadRequest},
		{"too large", "/secrets/db", "text/plain", strings.Repeat("v", engine.MaxSecretValue+1), http.StatusRequestEntityTooLarge},
		{"largest", "/secrets/db", "text/plain", strings.Repeat("v", engine.MaxSecretValue), http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodPut, s.URL+tc.path, tc.contentType, strings.NewReader(tc.body))
			wantStatus(t, status, body, tc.want)
			noValue(t, "the answer", body)
		})
	}
}

// TestAPI_SecretEventsAdminOnly: the secret events (sealed values) are
// shown to admin tokens only.
func TestAPI_SecretEventsAdminOnly(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	admin, viewer := s.Token(t, domain.RoleAdmin), s.Token(t, domain.RoleViewer)
	if _, err := s.Service.SetSecret(t.Context(), "db", []byte(apiSecret1), ""); err != nil {
		t.Fatal(err)
	}
	types := func(tok, query string) map[string]int {
		a := callAs(t, tok, http.MethodGet, s.URL+"/events"+query, nil)
		a.want(t, http.StatusOK)
		noValue(t, "GET /events"+query, a.body)
		n := map[string]int{}
		for line := range strings.Lines(string(a.body)) {
			n[decode[events.Envelope](t, []byte(line)).Type]++
		}
		return n
	}
	if got := types(admin, "?kind=secret"); got["secret.set"] != 1 || len(got) != 1 {
		t.Fatalf("admin, kind=secret: %v", got)
	}
	if got := types(viewer, ""); got["secret.set"] != 0 || got["token.created"] != 0 {
		t.Fatalf("viewer: %v", got)
	}
	callAs(t, viewer, http.MethodGet, s.URL+"/events?kind=secret", nil).want(t, http.StatusForbidden)
	callAs(t, viewer, http.MethodGet, s.URL+"/events?kind=task,secret", nil).want(t, http.StatusForbidden)
}
