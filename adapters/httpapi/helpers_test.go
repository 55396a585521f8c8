package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// call sends a request and returns the status and body.
func call(t *testing.T, method, url, contentType string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// callJSON sends v (a string is sent as is) as JSON.
func callJSON(t *testing.T, method, url string, v any) (int, []byte) {
	t.Helper()
	var body io.Reader
	switch v := v.(type) {
	case nil:
	case string:
		body = strings.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	return call(t, method, url, "application/json", body)
}

// decode unmarshals body into a T or fails.
func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, body, err)
	}
	return v
}

// wantStatus fails unless got is want; an error answer must be JSON
// {"error": "..."} with a message.
func wantStatus(t *testing.T, got int, body []byte, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d: %s", got, want, body)
	}
	if got >= 400 {
		if e := decode[httpapi.Error](t, body); e.Error == "" {
			t.Fatalf("error answer without a message: %s", body)
		}
	}
}

// createTask creates a task with the add module inline.
func createTask(t *testing.T, s *apitest.Stack, req httpapi.TaskRequest) httpapi.Task {
	t.Helper()
	if req.Name == "" {
		req.Name = "add"
	}
	if req.File == nil && req.ImageURL == "" {
		req.File = wasmfixtures.Add()
	}
	status, body := callJSON(t, http.MethodPost, s.URL+"/tasks", req)
	wantStatus(t, status, body, http.StatusCreated)
	return decode[httpapi.Task](t, body)
}

// multipartBody returns a form with one file field named field.
func multipartBody(t *testing.T, field string, content []byte) (string, io.Reader) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("note", "a field before the file"); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile(field, "module.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}
