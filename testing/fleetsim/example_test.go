package fleetsim_test

import (
	"os"
	"time"

	"github.com/jetprop/jetprop/testing/fleetsim"
)

func ExampleWriteTable() {
	d := func(s string) fleetsim.Duration { v, _ := time.ParseDuration(s); return fleetsim.Duration(v) }
	r := fleetsim.Report{
		Devices: 1000,
		Connect: fleetsim.ConnectReport{Took: d("3.8s"), Ready: 1000, Subscribed: 1000},
		Alive:   fleetsim.AliveReport{Alive: 1000, Took: d("0s")},
		Steady: &fleetsim.SteadyReport{CPUPercent: 1.9, RSS: 195 << 20, PeakRSS: 200 << 20,
			Heartbeats: fleetsim.Summary{Count: 2000, P50: d("2.3ms"), P99: d("11.2ms")}},
		Reach:    &fleetsim.ReachReport{Reached: 1000, Recorded: 1000},
		Dispatch: &fleetsim.DispatchReport{Tasks: 2000, Concurrency: 8, PerSecond: 434},
		Fleet:    fleetsim.Stats{Accept: true, HeartbeatQoS: 1, Starts: 3004, Duplicates: 4, Accepts: 3004},
	}
	_ = fleetsim.WriteTable(os.Stdout, r)
	// Output:
	// | devices | connected (time) | subscribed | API shows alive (time) | can receive starts | results recorded | starts received / accepts sent | engine CPU steady | engine RSS (peak) | heartbeat ack p50 / p99 | dispatch | stuck |
	// | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
	// | 1000 | 1000 (3.8s) | 1000 at QoS 0 | 1000 (0s) | 1000 | 1000 | 3004 (4 re-sent) / 3004 | 1.9 % | 195 MiB (200 MiB) | 2.3 ms / 11.2 ms | 2000 × 8: 434 tasks/s | 0 |
}
