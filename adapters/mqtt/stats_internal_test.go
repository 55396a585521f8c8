package mqtt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRateLog: a reason is logged at once, then at most once an interval,
// with its total and how many went unlogged; reasons do not hold each
// other back.
func TestRateLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	r := rateLog{every: time.Minute}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at     time.Duration
		reason string
		total  uint64
	}{
		{0, IgnoredStale, 1}, {time.Second, IgnoredStale, 2}, {2 * time.Second, IgnoredUnknown, 1},
		{30 * time.Second, IgnoredStale, 3}, {61 * time.Second, IgnoredStale, 4},
	}
	for _, s := range steps {
		r.log(l, t0.Add(s.at), s.reason, s.total, "device message ignored", "reason", s.reason)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"reason=stale total=1 unlogged_since_last=0", "reason=unknown total=1 unlogged_since_last=0", "reason=stale total=4 unlogged_since_last=2"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s, want it to hold %q", i, lines[i], w)
		}
	}
}
