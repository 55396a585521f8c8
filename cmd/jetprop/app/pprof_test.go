package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestApp_Pprof: --pprof serves the runtime profiles on its own loopback
// listener; an address that is not loopback is refused.
func TestApp_Pprof(t *testing.T) {
	cfg := testConfig(t.TempDir(), 0)
	cfg.PprofAddr = "127.0.0.1:0"
	a := startApp(t, cfg)
	resp, err := http.Get(a.PprofURL() + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine profile:") {
		t.Fatalf("%d %.200s", resp.StatusCode, b)
	}

	bad := testConfig(t.TempDir(), 0)
	bad.PprofAddr = "0.0.0.0:6060"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Validate = %v, want a refusal of a pprof address that is not loopback", err)
	}
}
