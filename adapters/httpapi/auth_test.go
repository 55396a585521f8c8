package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// answer is what one request got.
type answer struct {
	status int
	body   []byte
	header http.Header
}

// callAs sends a request with the Authorization header auth ("" for none;
// a bare token is sent as "Bearer <token>").
func callAs(t *testing.T, auth, method, url string, body any) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(auth, engine.TokenPrefix) {
		auth = "Bearer " + auth
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, body: b, header: resp.Header}
}

// want fails unless the answer has status want; an error answer must be
// JSON {"error": "..."}, and 401 and 403 must carry a Bearer challenge.
func (a answer) want(t *testing.T, want int) {
	t.Helper()
	wantStatus(t, a.status, a.body, want)
	if ch := a.header.Get("WWW-Authenticate"); (want == 401 || want == 403) && !strings.HasPrefix(ch, "Bearer ") {
		t.Fatalf("status %d with WWW-Authenticate %q", want, ch)
	}
}

// policy is the rule the route table follows: GET /health is public;
// tokens, device management and secrets are admin; other reads viewer,
// other writes operator.
func policy(method, path string) string {
	switch {
	case path == "/health":
		return "public"
	case strings.HasPrefix(path, "/tokens"), strings.HasPrefix(path, "/devices"), strings.HasPrefix(path, "/secrets"),
		strings.HasPrefix(path, "/proplets") && method != http.MethodGet:
		return "admin"
	case method == http.MethodGet:
		return "viewer"
	}
	return "operator"
}

// TestAPI_EveryRouteHasItsRole walks every registered route: its declared
// access follows the policy, and the server enforces it: no token is 401,
// a weaker role 403, the role and the stronger ones get past the check.
func TestAPI_EveryRouteHasItsRole(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	tokens := map[domain.Role]string{}
	for _, r := range domain.Roles() {
		tokens[r] = s.Token(t, r)
	}
	routes := httpapi.Routes(httpapi.New(nil, nil))
	if len(routes) < 30 {
		t.Fatalf("only %d routes in the table", len(routes))
	}
	fill := strings.NewReplacer("{id}", "nope", "{ref}", "nope:1", "{name}", "nope")
	for _, rt := range routes {
		t.Run(rt.Pattern, func(t *testing.T) {
			method, path, _ := strings.Cut(rt.Pattern, " ")
			if want := policy(method, path); rt.Access != want {
				t.Fatalf("declares %s; the policy says %s", rt.Access, want)
			}
			url := s.URL + fill.Replace(path)
			none := callAs(t, "", method, url, nil)
			if rt.Access == "public" {
				if none.status >= 400 {
					t.Fatalf("public route without a token: %d %s", none.status, none.body)
				}
				return
			}
			none.want(t, http.StatusUnauthorized)
			for _, role := range domain.Roles() {
				got := callAs(t, tokens[role], method, url, nil)
				switch {
				case !role.AtLeast(domain.Role(rt.Access)):
					got.want(t, http.StatusForbidden)
				case got.status == http.StatusUnauthorized || got.status == http.StatusForbidden:
					t.Fatalf("%s token: %d %s", role, got.status, got.body)
				}
			}
		})
	}
}

func TestAPI_Unauthenticated(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	adminTok := s.Token(t, domain.RoleAdmin)
	revoked := s.Token(t, domain.RoleOperator)
	tok, _ := s.Service.Authenticate(revoked)
	callAs(t, adminTok, http.MethodDelete, s.URL+"/tokens/"+tok.ID, nil).want(t, http.StatusNoContent)

	unknown := engine.FormatToken(bytes.Repeat([]byte{7}, engine.TokenBytes))
	tests := []struct {
		name, header, path string
		invalid            bool // the challenge says invalid_token
	}{
		{"no token", "", "/tasks", false},
		{"no token, no such route", "", "/nope", false},
		{"basic auth", "Basic YWRtaW46YWRtaW4=", "/tasks", true},
		{"bearer without a token", "Bearer", "/tasks", true},
		{"bearer and spaces", "Bearer   ", "/tasks", true},
		{"not a jetprop token", "Bearer abc.def.ghi", "/tasks", true},
		{"the token without its scheme", adminTok, "/tasks", true},
		{"unknown token", "Bearer " + unknown, "/tasks", true},
		{"revoked right before", "Bearer " + revoked, "/tasks", true},
		{"revoked, on a route no one has", "Bearer " + revoked, "/nope", true},
		{"the hash of a token", "Bearer " + engine.HashToken(adminTok), "/tokens", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := callHeader(t, tc.header, s.URL+tc.path)
			a.want(t, http.StatusUnauthorized)
			if got := strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`); got != tc.invalid {
				t.Fatalf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("token in the query", func(t *testing.T) {
		callAs(t, "", http.MethodGet, s.URL+"/tasks?access_token="+adminTok, nil).want(t, http.StatusUnauthorized)
	})
	t.Run("two Authorization headers", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/tasks", nil)
		req.Header.Add("Authorization", "Bearer "+adminTok)
		req.Header.Add("Authorization", "Bearer "+adminTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("health is open", func(t *testing.T) {
		callAs(t, "", http.MethodGet, s.URL+"/health", nil).want(t, http.StatusOK)
		callAs(t, unknown, http.MethodGet, s.URL+"/health", nil).want(t, http.StatusOK)
	})
	t.Run("scheme in another case", func(t *testing.T) {
		callAs(t, "bearer "+adminTok, http.MethodGet, s.URL+"/tasks", nil).want(t, http.StatusOK)
	})
}

// callHeader sends GET url with header as the Authorization header (none
// when empty).
func callHeader(t *testing.T, header, url string) answer {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, header: resp.Header}
}

// TestAPI_Roles: what each role may do, on a table of routes that answer
// 2xx when allowed.
func TestAPI_Roles(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	tokens := map[domain.Role]string{}
	for _, r := range domain.Roles() {
		tokens[r] = s.Token(t, r)
	}
	task := httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()}
	spare := func() string { // a token for an admin to revoke
		tok, _ := s.Service.Authenticate(s.Token(t, domain.RoleViewer))
		return "/tokens/" + tok.ID
	}
	tests := []struct {
		name         string
		method, path string
		body         any
		ok           int         // the status when allowed
		least        domain.Role // the weakest role allowed
	}{
		{"list tasks", http.MethodGet, "/tasks", nil, 200, domain.RoleViewer},
		{"list proplets", http.MethodGet, "/proplets", nil, 200, domain.RoleViewer},
		{"list workflows", http.MethodGet, "/workflows", nil, 200, domain.RoleViewer},
		{"list jobs", http.MethodGet, "/jobs", nil, 200, domain.RoleViewer},
		{"list artifacts", http.MethodGet, "/artifacts", nil, 200, domain.RoleViewer},
		{"read events", http.MethodGet, "/events", nil, 200, domain.RoleViewer},
		{"create a task", http.MethodPost, "/tasks", task, 201, domain.RoleOperator},
		{"create a workflow", http.MethodPost, "/workflows", twoSteps("w"), 201, domain.RoleOperator},
		{"create a token", http.MethodPost, "/tokens", httpapi.TokenRequest{Name: "ci", Role: "viewer"}, 201, domain.RoleAdmin},
		{"list tokens", http.MethodGet, "/tokens", nil, 200, domain.RoleAdmin},
		{"revoke a token", http.MethodDelete, "", nil, 204, domain.RoleAdmin},
	}
	for _, tc := range tests {
		for _, role := range domain.Roles() {
			t.Run(tc.name+" as "+string(role), func(t *testing.T) {
				path := tc.path
				if path == "" {
					path = spare()
				}
				a := callAs(t, tokens[role], tc.method, s.URL+path, tc.body)
				if role.AtLeast(tc.least) {
					a.want(t, tc.ok)
				} else {
					a.want(t, http.StatusForbidden)
				}
			})
		}
	}
}

func TestAPI_Tokens(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	adminTok := s.Token(t, domain.RoleAdmin)
	admin, _ := s.Service.Authenticate(adminTok)

	created := callAs(t, adminTok, http.MethodPost, s.URL+"/tokens", httpapi.TokenRequest{Name: "ci", Role: "operator"})
	created.want(t, http.StatusCreated)
	nt := decode[httpapi.NewToken](t, created.body)
	if !engine.WellFormedToken(nt.Secret) || nt.Name != "ci" || nt.Role != domain.RoleOperator || nt.CreatedBy != admin.ID || nt.Revoked ||
		created.header.Get("Location") != "/tokens/"+nt.ID || created.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("created %+v, headers %v", nt, created.header)
	}
	callAs(t, nt.Secret, http.MethodGet, s.URL+"/tasks", nil).want(t, http.StatusOK)

	list := callAs(t, adminTok, http.MethodGet, s.URL+"/tokens", nil)
	list.want(t, http.StatusOK)
	for _, secret := range []string{nt.Secret, adminTok, engine.HashToken(nt.Secret), engine.HashToken(adminTok)} {
		if bytes.Contains(list.body, []byte(secret)) {
			t.Fatalf("GET /tokens shows a secret or a hash: %s", list.body)
		}
	}
	page := decode[httpapi.TokenList](t, list.body)
	if page.Total != 2 || page.Tokens[0].ID != admin.ID || page.Tokens[1].ID != nt.ID {
		t.Fatalf("list %+v", page)
	}

	callAs(t, adminTok, http.MethodDelete, s.URL+"/tokens/"+nt.ID, nil).want(t, http.StatusNoContent)
	callAs(t, nt.Secret, http.MethodGet, s.URL+"/tasks", nil).want(t, http.StatusUnauthorized)
	callAs(t, adminTok, http.MethodDelete, s.URL+"/tokens/"+nt.ID, nil).want(t, http.StatusNoContent)
	got := callAs(t, adminTok, http.MethodGet, s.URL+"/tokens/"+nt.ID, nil)
	got.want(t, http.StatusOK)
	if tok := decode[httpapi.Token](t, got.body); !tok.Revoked || tok.RevokedBy != admin.ID || tok.RevokedAt.IsZero() {
		t.Fatalf("revoked token %+v", tok)
	}

	for _, tc := range []struct {
		name string
		body any
		want int
	}{
		{"unknown role", httpapi.TokenRequest{Name: "x", Role: "root"}, 400},
		{"no name", httpapi.TokenRequest{Role: "viewer"}, 400},
		{"unknown field", `{"name":"x","role":"viewer","secret":"mine"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := callJSONAs(t, adminTok, http.MethodPost, s.URL+"/tokens", tc.body)
			wantStatus(t, status, body, tc.want)
		})
	}
	callAs(t, adminTok, http.MethodDelete, s.URL+"/tokens/nope", nil).want(t, http.StatusNotFound)
	callAs(t, adminTok, http.MethodGet, s.URL+"/tokens/nope", nil).want(t, http.StatusNotFound)
}

// callJSONAs is callJSON with a token: v is sent as JSON, a string as is.
func callJSONAs(t *testing.T, tok, method, url string, v any) (int, []byte) {
	t.Helper()
	raw, ok := v.(string)
	if !ok {
		a := callAs(t, tok, method, url, v)
		return a.status, a.body
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAPI_DevModeOpen: without WithAuth nothing asks for a token, and a
// token sent, good or bad, is not looked at.
func TestAPI_DevModeOpen(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	callAs(t, "", http.MethodGet, s.URL+"/tasks", nil).want(t, http.StatusOK)
	callAs(t, "Bearer nonsense", http.MethodGet, s.URL+"/tasks", nil).want(t, http.StatusOK)
	callAs(t, engine.FormatToken(make([]byte, engine.TokenBytes)), http.MethodPost, s.URL+"/tasks",
		httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()}).want(t, http.StatusCreated)
	created := callAs(t, "", http.MethodPost, s.URL+"/tokens", httpapi.TokenRequest{Name: "later", Role: "admin"})
	created.want(t, http.StatusCreated)
	if nt := decode[httpapi.NewToken](t, created.body); nt.CreatedBy != "" || !engine.WellFormedToken(nt.Secret) {
		t.Fatalf("token made in dev mode: %+v", nt)
	}
	callAs(t, "", http.MethodGet, s.URL+"/nope", nil).want(t, http.StatusNotFound)
}

// TestAPI_EventsHideTokens: the token events are access management, shown
// to admin tokens only.
func TestAPI_EventsHideTokens(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	adminTok, viewerTok := s.Token(t, domain.RoleAdmin), s.Token(t, domain.RoleViewer)
	createTaskAs(t, s, s.Token(t, domain.RoleOperator))
	types := func(tok, query string) map[string]int {
		a := callAs(t, tok, http.MethodGet, s.URL+"/events"+query, nil)
		a.want(t, http.StatusOK)
		out := map[string]int{}
		sc := bufio.NewScanner(bytes.NewReader(a.body))
		for sc.Scan() {
			var line struct{ Type string }
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			out[line.Type]++
		}
		return out
	}
	if got := types(adminTok, ""); got["token.created"] != 3 || got["task.created"] != 1 {
		t.Fatalf("admin sees %v", got)
	}
	if got := types(viewerTok, ""); got["token.created"] != 0 || got["task.created"] != 1 {
		t.Fatalf("viewer sees %v", got)
	}
	callAs(t, viewerTok, http.MethodGet, s.URL+"/events?kind=task,token", nil).want(t, http.StatusForbidden)
	if got := types(adminTok, "?kind=token"); got["token.created"] != 3 || len(got) != 1 {
		t.Fatalf("admin asking for tokens sees %v", got)
	}
}

func createTaskAs(t *testing.T, s *apitest.Stack, tok string) httpapi.Task {
	t.Helper()
	a := callAs(t, tok, http.MethodPost, s.URL+"/tasks", httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()})
	a.want(t, http.StatusCreated)
	return decode[httpapi.Task](t, a.body)
}

// TestAPI_EventStreamEndsWhenRevoked: a followed event stream outlives
// the request that checked its token; it ends at the first event after
// the token is revoked.
func TestAPI_EventStreamEndsWhenRevoked(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	adminTok, viewerTok, operatorTok := s.Token(t, domain.RoleAdmin), s.Token(t, domain.RoleViewer), s.Token(t, domain.RoleOperator)
	viewer, _ := s.Service.Authenticate(viewerTok)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/events?follow=true&kind=task", nil)
	req.Header.Set("Authorization", "Bearer "+viewerTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		return lines.Text()
	}
	createTaskAs(t, s, operatorTok)
	if line := next(); !strings.Contains(line, `"task.created"`) {
		t.Fatalf("first line %s", line)
	}
	callAs(t, adminTok, http.MethodDelete, s.URL+"/tokens/"+viewer.ID, nil).want(t, http.StatusNoContent)
	createTaskAs(t, s, operatorTok)
	if line := next(); !strings.Contains(line, `"error"`) || !strings.Contains(line, "revoked") {
		t.Fatalf("after the revocation: %s", line)
	}
	if lines.Scan() {
		t.Fatalf("the stream goes on: %s", lines.Text())
	}
}
