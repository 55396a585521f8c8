package httpapi_test

import (
	"maps"
	"net/http"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
)

// TestAPI_InboundStats: GET /inbound/stats serves what WithInbound gives,
// to a viewer (401 without a token); without WithInbound it is a JSON 404.
func TestAPI_InboundStats(t *testing.T) {
	stats := httpapi.InboundStats{Received: 9, Recorded: 5, Ignored: 3, Retried: 1,
		IgnoredByReason: map[string]uint64{"stale": 2, "unknown": 1},
		Refusals:        httpapi.RefusalStats{Confirmed: 3, Overturned: 1}}
	s := apitest.Start(t, apitest.Config{Auth: true, Options: []httpapi.Option{httpapi.WithInbound(func() httpapi.InboundStats { return stats })}})
	callAs(t, "", http.MethodGet, s.URL+"/inbound/stats", nil).want(t, http.StatusUnauthorized)
	got := callAs(t, s.Token(t, domain.RoleViewer), http.MethodGet, s.URL+"/inbound/stats", nil)
	got.want(t, http.StatusOK)
	if d := decode[httpapi.InboundStats](t, got.body); d.Received != 9 || d.Ignored != 3 || !maps.Equal(d.IgnoredByReason, stats.IgnoredByReason) || d.Refusals != stats.Refusals {
		t.Fatalf("GET /inbound/stats = %+v, want %+v", d, stats)
	}

	bare := apitest.Start(t, apitest.Config{})
	status, body := call(t, http.MethodGet, bare.URL+"/inbound/stats", "", nil)
	wantStatus(t, status, body, http.StatusNotFound)
}
