package app_test

import "testing"

// BenchmarkDispatchMetrics is BenchmarkDispatch at concurrency 8 with the
// collection of metrics on (the default: latency histograms, the windows
// of samples, the local proplet publishing its metrics) and off
// (Config.MetricsOff), in the same run: what collecting costs.
//
//	go test -run '^$' -bench DispatchMetrics -benchtime 2000x ./cmd/jetprop/app/
func BenchmarkDispatchMetrics(b *testing.B) {
	for _, off := range []bool{false, true} {
		name := "metrics=on"
		if off {
			name = "metrics=off"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b.TempDir(), 1)
			cfg.MetricsOff = off
			benchDispatch(b, cfg, 8)
		})
	}
}
