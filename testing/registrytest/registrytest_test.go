package registrytest_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/jetprop/jetprop/testing/registrytest"
)

func get(t *testing.T, url string, set func(*http.Request)) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestStart_Open(t *testing.T) {
	r := registrytest.Start(t)
	if code := get(t, r.URL()+"/v2/", nil); code != http.StatusOK {
		t.Fatalf("GET /v2/: %d, want 200", code)
	}
	if code := get(t, r.URL()+"/v2/demo/add/tags/list", nil); code != http.StatusNotFound {
		t.Fatalf("tags of an unknown repo: %d, want 404", code)
	}
	if _, err := os.Stat(r.Dir); err != nil {
		t.Fatal(err)
	}
}

func TestStart_BasicAuth(t *testing.T) {
	r := registrytest.Start(t, registrytest.WithBasicAuth("alice", "s3cret"))
	tests := []struct {
		name       string
		user, pass string
		want       int
	}{
		{"right", "alice", "s3cret", http.StatusOK},
		{"wrong password", "alice", "nope", http.StatusUnauthorized},
		{"unknown user", "bob", "s3cret", http.StatusUnauthorized},
		{"none", "", "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code := get(t, r.URL()+"/v2/", func(req *http.Request) {
				if tc.user != "" {
					req.SetBasicAuth(tc.user, tc.pass)
				}
			})
			if code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}
}

func TestStart_TokenAuth(t *testing.T) {
	r := registrytest.Start(t, registrytest.WithTokenAuth())
	bearer := func(tok string) func(*http.Request) {
		return func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+tok) }
	}
	if code := get(t, r.URL()+"/v2/", nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code := get(t, r.URL()+"/v2/", bearer(r.Token(t, "demo/add"))); code != http.StatusOK {
		t.Fatalf("valid token: %d, want 200", code)
	}
	if code := get(t, r.URL()+"/v2/", bearer("a.b.c")); code != http.StatusUnauthorized {
		t.Fatalf("garbage token: %d, want 401", code)
	}
	url := r.URL() + "/v2/demo/add/tags/list"
	if code := get(t, url, bearer(r.Token(t, "demo/add", "pull"))); code != http.StatusNotFound {
		t.Fatalf("pull token on an empty repo: %d, want 404", code)
	}
	if code := get(t, url, bearer(r.Token(t, "other/repo", "pull"))); code != http.StatusUnauthorized {
		t.Fatalf("token for another repo: %d, want 401", code)
	}
}

func TestStart_StopsAtCleanup(t *testing.T) {
	var host string
	t.Run("inner", func(t *testing.T) { host = registrytest.Start(t).Host })
	resp, err := http.Get("http://" + host + "/v2/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("registry on %s still answers after cleanup", host)
	}
}
