package engine_test

import (
	"fmt"
	"testing"

	"github.com/jetprop/jetprop/testing/replay"
)

// BenchmarkDecideWorkflow: decider throughput in memory, events decided
// and folded per second, for workflows of 10 and 1,000 steps.
//
//	go test -run '^$' -bench DecideWorkflow ./engine/
func BenchmarkDecideWorkflow(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("steps=%d", n), func(b *testing.B) {
			spec := replay.FanOutSpec(n)
			count := 0
			for b.Loop() {
				count += len(replay.DriveWorkflow(b, "wf", spec, t0))
			}
			b.ReportMetric(float64(count)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
