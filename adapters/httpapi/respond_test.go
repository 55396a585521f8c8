package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"task not found", fmt.Errorf("task x: %w", domain.ErrNotFound), http.StatusNotFound},
		{"module not found", domain.ErrModuleNotFound, http.StatusNotFound},
		{"exists", domain.ErrExists, http.StatusConflict},
		{"invalid state", domain.ErrInvalidState, http.StatusConflict},
		{"no device", domain.ErrNoDevice, http.StatusConflict},
		{"append conflicts", events.ErrConflict, http.StatusConflict},
		{"quarantined", &events.QuarantineError{}, http.StatusConflict},
		{"invalid command", domain.ErrInvalid, http.StatusBadRequest},
		{"not wasm", fmt.Errorf("upload: %w", domain.ErrNotWasm), http.StatusBadRequest},
		{"invalid id", events.ErrInvalidID, http.StatusBadRequest},
		{"bad request", badRequest("limit %q", "x"), http.StatusBadRequest},
		{"module too large", domain.ErrTooLarge, http.StatusRequestEntityTooLarge},
		{"body too large", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge},
		{"registry failed", fmt.Errorf("import: %w", domain.ErrUpstream), http.StatusBadGateway},
		{"no importer", domain.ErrUnsupported, http.StatusNotImplemented},
		{"anything else", errors.New("disk on fire"), http.StatusInternalServerError},
		{"a deadline of the server's own", context.DeadlineExceeded, http.StatusServiceUnavailable},
		{"store unavailable", fmt.Errorf("events: append: %w", nats.ErrNoResponders), http.StatusServiceUnavailable},
		{"leader election", &jetstream.APIError{Code: 503, ErrorCode: 10008}, http.StatusServiceUnavailable},
		{"read model behind", fmt.Errorf("task x: %w", domain.ErrBehind), http.StatusServiceUnavailable},
		{"key reused", domain.ErrKeyReused, http.StatusUnprocessableEntity},
		{"module store unreachable during a quarantine check", fmt.Errorf("%w: %w", domain.ErrExists, nats.ErrTimeout), http.StatusConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(tc.err); got != tc.want {
				t.Fatalf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestFail_LogsServerFaultsOnly(t *testing.T) {
	var logs bytes.Buffer
	a := &api{log: slog.New(slog.NewTextHandler(&logs, nil))}
	r := httptest.NewRequest(http.MethodGet, "/tasks", nil)

	w := httptest.NewRecorder()
	a.fail(w, r, errors.New("disk on fire"))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "disk") {
		t.Fatalf("500 answer %d %s", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Fatalf("server fault not logged: %q", logs.String())
	}

	logs.Reset()
	w = httptest.NewRecorder()
	a.fail(w, r, domain.ErrNotFound)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"error":"not found"`) || logs.Len() != 0 {
		t.Fatalf("404 answer %d %s, logs %q", w.Code, w.Body, logs.String())
	}
}

func TestFail_UnavailableSaysWhenToRetry(t *testing.T) {
	var logs bytes.Buffer
	a := &api{log: slog.New(slog.NewTextHandler(&logs, nil))}
	r := httptest.NewRequest(http.MethodPost, "/tasks", nil)
	w := httptest.NewRecorder()
	a.fail(w, r, fmt.Errorf("events: append to task/x: %w", nats.ErrNoResponders))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("answer %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), "temporarily unavailable") || !strings.Contains(logs.String(), "no responders") {
		t.Fatalf("answer %s, logs %q", w.Body, logs.String())
	}
}
