package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// push sends module raw to POST /artifacts?<query> and wants 201.
func push(t *testing.T, s *apitest.Stack, query string, module []byte) httpapi.Artifact {
	t.Helper()
	status, body := call(t, http.MethodPost, s.URL+"/artifacts?"+query, "application/wasm", bytes.NewReader(module))
	wantStatus(t, status, body, http.StatusCreated)
	return decode[httpapi.Artifact](t, body)
}

func listArtifacts(t *testing.T, s *apitest.Stack) httpapi.ArtifactList {
	t.Helper()
	status, body := call(t, http.MethodGet, s.URL+"/artifacts", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	return decode[httpapi.ArtifactList](t, body)
}

func TestAPI_Artifacts_RoundTrip(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	add := wasmfixtures.Add()

	resp, err := http.Post(s.URL+"/artifacts?name=vision&tag=1.2", "application/wasm", bytes.NewReader(add))
	if err != nil {
		t.Fatal(err)
	}
	pushed := decodeResp[httpapi.Artifact](t, resp, http.StatusCreated)
	if loc := resp.Header.Get("Location"); loc != "/artifacts/vision:1.2" {
		t.Errorf("Location %q", loc)
	}
	if pushed.Name != "vision" || pushed.Tag != "1.2" || !domain.ValidDigest(pushed.Digest) || pushed.Size != int64(len(add)) || pushed.CreatedAt.IsZero() {
		t.Fatalf("pushed %+v", pushed)
	}

	ct, form := multipartBody(t, "file", add)
	status, body := call(t, http.MethodPost, s.URL+"/artifacts?name=vision:latest", ct, form)
	wantStatus(t, status, body, http.StatusCreated)
	if latest := decode[httpapi.Artifact](t, body); latest.Tag != "latest" || latest.Digest != pushed.Digest {
		t.Fatalf("multipart push %+v", latest)
	}

	list := listArtifacts(t, s)
	if list.Total != 2 || list.Limit != httpapi.DefaultLimit || len(list.Artifacts) != 2 || list.Artifacts[0].Tag != "1.2" || list.Artifacts[1].Tag != "latest" {
		t.Fatalf("list %+v", list)
	}
	for _, ref := range []string{"vision:1.2", "vision", pushed.Digest} {
		status, body := call(t, http.MethodGet, s.URL+"/artifacts/"+ref, "", nil)
		wantStatus(t, status, body, http.StatusOK)
		if got := decode[httpapi.Artifact](t, body); got.Digest != pushed.Digest || got.Size != pushed.Size || got.Name != "vision" {
			t.Errorf("get %s: %+v", ref, got)
		}
	}

	t.Run("download", func(t *testing.T) {
		resp, err := http.Get(s.URL + "/artifacts/vision:1.2/content")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, add) {
			t.Fatalf("status %d, %d bytes, %v", resp.StatusCode, len(got), err)
		}
		h := resp.Header
		if h.Get("Content-Type") != "application/wasm" || h.Get(httpapi.HeaderModuleDigest) != pushed.Digest ||
			h.Get("ETag") != `"`+pushed.Digest+`"` || resp.ContentLength != int64(len(add)) {
			t.Fatalf("headers %v", h)
		}
		head, err := http.Head(s.URL + "/artifacts/" + pushed.Digest + "/content")
		if err != nil || head.StatusCode != http.StatusOK || head.ContentLength != int64(len(add)) {
			t.Fatalf("HEAD: %v %+v", err, head)
		}
		head.Body.Close()
	})

	status, body = call(t, http.MethodDelete, s.URL+"/artifacts/vision:1.2", "", nil)
	wantStatus(t, status, body, http.StatusNoContent)
	status, body = call(t, http.MethodGet, s.URL+"/artifacts/vision:1.2", "", nil)
	wantStatus(t, status, body, http.StatusNotFound)
	status, body = call(t, http.MethodDelete, s.URL+"/artifacts/vision?all=true", "", nil)
	wantStatus(t, status, body, http.StatusNoContent)
	if list := listArtifacts(t, s); list.Total != 0 || list.Artifacts == nil {
		t.Fatalf("list after delete %+v", list)
	}
	status, body = call(t, http.MethodGet, s.URL+"/artifacts/"+pushed.Digest+"/content", "", nil)
	wantStatus(t, status, body, http.StatusNotFound)
}

func decodeResp[T any](t *testing.T, resp *http.Response, want int) T {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp.StatusCode, b, want)
	return decode[T](t, b)
}

// TestAPI_Artifacts_Retag: pushing other bytes to a tag moves it; the old
// module stays reachable by digest and the tag keeps its history.
func TestAPI_Artifacts_Retag(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	v1 := push(t, s, "name=vision", wasmfixtures.Add())
	v2 := push(t, s, "name=vision", wasmfixtures.Echo())
	if v1.Digest == v2.Digest || v2.Tag != "latest" {
		t.Fatalf("v1 %+v v2 %+v", v1, v2)
	}
	status, body := call(t, http.MethodGet, s.URL+"/artifacts/vision:latest", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	got := decode[httpapi.Artifact](t, body)
	if got.Digest != v2.Digest || len(got.History) != 2 ||
		got.History[0].Digest != v1.Digest || got.History[0].Previous != "" ||
		got.History[1].Digest != v2.Digest || got.History[1].Previous != v1.Digest {
		t.Fatalf("moved tag %+v", got)
	}
	if list := listArtifacts(t, s); list.Total != 1 {
		t.Fatalf("list %+v", list)
	}
	status, body = call(t, http.MethodGet, s.URL+"/artifacts/"+v1.Digest+"/content", "", nil)
	if status != http.StatusOK || !bytes.Equal(body, wasmfixtures.Add()) {
		t.Fatalf("old module by digest: %d", status)
	}
	if d := push(t, s, "name=vision&tag=latest", wasmfixtures.Echo()); d.Digest != v2.Digest {
		t.Fatalf("same push again %+v", d)
	}
	if got := eventTypes(t, s, events.KindArtifact); strings.Join(got, " ") != "artifact.stored artifact.tagged artifact.stored artifact.tagged" {
		t.Fatalf("events %v", got)
	}
}

func eventTypes(t *testing.T, s *apitest.Stack, kind events.Kind) []string {
	t.Helper()
	var out []string
	err := s.Store.Replay(t.Context(), kind, 1, func(e events.Envelope) error {
		out = append(out, e.Type)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAPI_Artifacts_InUse: a module a task uses cannot be deleted (409)
// until the task is; a task created with image name:tag runs that module.
func TestAPI_Artifacts_InUse(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	pushed := push(t, s, "name=vision&tag=1.2", wasmfixtures.Add())
	task := createTask(t, s, httpapi.TaskRequest{Name: "add", ImageURL: "vision:1.2", Inputs: []string{"10", "20"}})
	if task.Module != pushed.Digest || task.ModuleSize != pushed.Size || task.ImageURL != "vision:1.2" {
		t.Fatalf("task %+v, want module %s", task, pushed.Digest)
	}

	for _, ref := range []string{"vision:1.2", pushed.Digest} {
		status, body := call(t, http.MethodDelete, s.URL+"/artifacts/"+ref, "", nil)
		wantStatus(t, status, body, http.StatusConflict)
		if !strings.Contains(string(body), task.ID) {
			t.Errorf("409 does not name the task: %s", body)
		}
	}
	status, body := call(t, http.MethodDelete, s.URL+"/artifacts/vision?all=true", "", nil)
	wantStatus(t, status, body, http.StatusConflict)

	// The task runs the module it was given: the responder plays a proplet
	// that answers with what it was asked to run.
	s.Respond(t, func(tk engine.Task) (engine.RecordResult, bool) {
		mod, err := s.Modules.Get(t.Context(), tk.Module)
		if err != nil || !bytes.Equal(mod, wasmfixtures.Add()) {
			return engine.RecordResult{Error: "not the pushed module"}, true
		}
		return engine.RecordResult{Result: []byte(`"ran ` + tk.Module + `"`)}, true
	})
	s.Announce(t, "p1")
	status, body = call(t, http.MethodPost, s.URL+"/tasks/"+task.ID+"/start", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	status, body = call(t, http.MethodGet, s.URL+"/tasks/"+task.ID+"/results?wait=10s", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if r := decode[httpapi.Results](t, body); string(r.Results) != `"ran `+pushed.Digest+`"` {
		t.Fatalf("results %+v", r)
	}

	status, body = call(t, http.MethodDelete, s.URL+"/tasks/"+task.ID, "", nil)
	wantStatus(t, status, body, http.StatusNoContent)
	status, body = call(t, http.MethodDelete, s.URL+"/artifacts/vision:1.2", "", nil)
	wantStatus(t, status, body, http.StatusNoContent)
	if s.Modules.Has(t.Context(), pushed.Digest) {
		t.Fatal("module still stored after its last tag and task went")
	}
}

// TestAPI_Artifacts_Refused: bad pushes store nothing and append no event.
func TestAPI_Artifacts_Refused(t *testing.T) {
	s := apitest.Start(t, apitest.Config{ModuleMax: 1024, Options: []httpapi.Option{httpapi.WithMaxBody(8 << 10)}})
	add := wasmfixtures.Add()
	big := func(n int) []byte { return wasmfixtures.Padded(wasmfixtures.Add(), len(add)+n) }
	formCT, form := multipartBody(t, "file", wasmfixtures.Invalid())
	noFileCT, noFile := multipartBody(t, "module", add)
	tests := []struct {
		name        string
		query       string
		contentType string
		body        io.Reader
		want        int
	}{
		{"not wasm", "name=vision", "application/wasm", bytes.NewReader(wasmfixtures.Invalid()), http.StatusBadRequest},
		{"not wasm, multipart", "name=vision", formCT, form, http.StatusBadRequest},
		{"empty", "name=vision", "application/octet-stream", nil, http.StatusBadRequest},
		{"multipart without file", "name=vision", noFileCT, noFile, http.StatusBadRequest},
		{"not multipart", "name=vision", "text/plain", strings.NewReader("x"), http.StatusBadRequest},
		{"no name", "tag=1", "application/wasm", bytes.NewReader(add), http.StatusBadRequest},
		{"bad name", "name=my.vision", "application/wasm", bytes.NewReader(add), http.StatusBadRequest},
		{"bad tag", "name=vision&tag=a/b", "application/wasm", bytes.NewReader(add), http.StatusBadRequest},
		{"tag twice", "name=vision:1&tag=2", "application/wasm", bytes.NewReader(add), http.StatusBadRequest},
		{"a digest as name", "name=sha256:" + strings.Repeat("a", 64), "application/wasm", bytes.NewReader(add), http.StatusBadRequest},
		{"module over the store's limit", "name=vision", "application/wasm", bytes.NewReader(big(2000)), http.StatusRequestEntityTooLarge},
		{"body over the limit", "name=vision", "application/wasm", bytes.NewReader(big(10 << 10)), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodPost, s.URL+"/artifacts?"+tc.query, tc.contentType, tc.body)
			wantStatus(t, status, body, tc.want)
		})
	}
	if list := listArtifacts(t, s); list.Total != 0 {
		t.Fatalf("list after refused pushes %+v", list)
	}
	if got := eventTypes(t, s, events.KindArtifact); len(got) != 0 {
		t.Fatalf("events after refused pushes %v", got)
	}
	if fits := push(t, s, "name=vision", big(100)); fits.Size != int64(len(add)+100) {
		t.Fatalf("a module that fits: %+v", fits)
	}
}

func TestAPI_Artifacts_NotFound(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	push(t, s, "name=vision&tag=1.2", wasmfixtures.Add())
	unknown := "sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/artifacts/nope", http.StatusNotFound},
		{http.MethodGet, "/artifacts/vision:9", http.StatusNotFound},
		{http.MethodGet, "/artifacts/vision", http.StatusNotFound}, // no latest tag
		{http.MethodGet, "/artifacts/" + unknown, http.StatusNotFound},
		{http.MethodGet, "/artifacts/nope/content", http.StatusNotFound},
		{http.MethodGet, "/artifacts/" + unknown + "/content", http.StatusNotFound},
		{http.MethodDelete, "/artifacts/nope:1", http.StatusNotFound},
		{http.MethodDelete, "/artifacts/vision:9", http.StatusNotFound},
		{http.MethodDelete, "/artifacts/" + unknown, http.StatusNotFound},
		{http.MethodDelete, "/artifacts/nope?all=true", http.StatusNotFound},
		{http.MethodGet, "/artifacts/a.b", http.StatusBadRequest},
		{http.MethodGet, "/artifacts/sha256:xyz", http.StatusBadRequest},
		{http.MethodDelete, "/artifacts/vision:1.2?all=maybe", http.StatusBadRequest},
		{http.MethodGet, "/artifacts?limit=0", http.StatusBadRequest},
		{http.MethodPut, "/artifacts/vision:1.2", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, body := call(t, tc.method, s.URL+tc.path, "", nil)
			wantStatus(t, status, body, tc.want)
		})
	}
}

// TestAPI_ImportExport_Requests checks the requests of the OCI endpoints;
// imports from a real registry are tested with the importer in
// cmd/jetprop/app.
func TestAPI_ImportExport_Requests(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	push(t, s, "name=add:1", wasmfixtures.Add())
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"import without an importer", "/artifacts/import", `{"ref": "localhost:5000/demo/add:v1"}`, http.StatusNotImplemented},
		{"export without an importer", "/artifacts/add:1/export", `{"to": "localhost:5000/demo/add:v1"}`, http.StatusNotImplemented},
		{"import: not JSON", "/artifacts/import", `ref=x`, http.StatusBadRequest},
		{"import: unknown field", "/artifacts/import", `{"ref": "r/x:1", "pasword": "x"}`, http.StatusBadRequest},
		{"import: empty body", "/artifacts/import", ``, http.StatusBadRequest},
		{"export: wrong type", "/artifacts/add:1/export", `{"to": 5}`, http.StatusBadRequest},
		{"import: body too large", "/artifacts/import", `{"ref": "` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodPost, s.URL+tc.path, "application/json", strings.NewReader(tc.body))
			wantStatus(t, status, body, tc.want)
			if e := decode[httpapi.Error](t, body); e.Error == "" {
				t.Fatalf("no error message: %s", body)
			}
		})
	}
}
