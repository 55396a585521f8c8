package mqtt_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

var sampleT0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func propletSample(i int) wire.PropletMetrics {
	usage := wire.Int(i)
	return wire.PropletMetrics{PropletID: "ignored", Namespace: "default", Timestamp: wire.Timestamp{Time: sampleT0.Add(time.Duration(i) * time.Second)},
		CPU: wire.CPUMetrics{Percent: float64(i)}, Memory: wire.MemoryMetrics{RSSBytes: wire.Int(i), ContainerUsageBytes: &usage}}
}

// Property: whatever the order and number of samples, a device's window
// never holds more than n, and it holds the newest ones, oldest first.
func TestSamples_WindowBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n := 1 + rng.IntN(8)
		s := mqtt.NewSamples(n, 4)
		devices := 1 + rng.IntN(5)
		sent := make([]int, devices)
		for range rng.IntN(40) {
			d := rng.IntN(devices)
			s.AddProplet(fmt.Sprint("d", d), propletSample(sent[d]), sampleT0)
			sent[d]++
		}
		for d := range devices {
			got, total := s.PropletMetrics(fmt.Sprint("d", d), 0, 1000)
			want := min(sent[d], n)
			if total != want || len(got) != want {
				t.Fatalf("round %d: device %d sent %d, window %d: holds %d (total %d), want %d", round, d, sent[d], n, len(got), total, want)
			}
			for i, m := range got {
				if wantRSS := wire.Int(sent[d] - want + i); m.Memory.RSSBytes != wantRSS || *m.Memory.ContainerUsageBytes != wantRSS {
					t.Fatalf("round %d: sample %d = %+v, want the sample %d", round, i, m.Memory, wantRSS)
				}
				if m.PropletID != fmt.Sprint("d", d) || m.Namespace != "default" {
					t.Fatalf("sample names %q %q", m.PropletID, m.Namespace)
				}
			}
		}
	}
}

func TestSamples_Pages(t *testing.T) {
	s := mqtt.NewSamples(5, 0)
	for i := range 7 {
		s.AddProplet("d", propletSample(i), sampleT0)
	}
	tests := []struct {
		name          string
		offset, limit int
		want          []wire.Int
	}{
		{"all", 0, 100, []wire.Int{2, 3, 4, 5, 6}},
		{"offset", 3, 100, []wire.Int{5, 6}},
		{"limit", 1, 2, []wire.Int{3, 4}},
		{"past the end", 5, 10, nil},
		{"no limit", 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total := s.PropletMetrics("d", tc.offset, tc.limit)
			if total != 5 || len(got) != len(tc.want) {
				t.Fatalf("got %d samples, total %d; want %d, total 5", len(got), total, len(tc.want))
			}
			for i, m := range got {
				if m.Memory.RSSBytes != tc.want[i] || !m.Timestamp.Time.Equal(sampleT0.Add(time.Duration(tc.want[i])*time.Second)) {
					t.Fatalf("sample %d: %+v", i, m)
				}
			}
		})
	}
	if got, total := s.PropletMetrics("nobody", 0, 10); total != 0 || len(got) != 0 || got == nil {
		t.Fatalf("unknown device: %v %d, want an empty list", got, total)
	}
}

// An uptime timestamp (the embedded proplet's) is stamped with the time of
// arrival; the aggregated part of a task sample is kept, or left out.
func TestSamples_TaskStampAndAggregated(t *testing.T) {
	s := mqtt.NewSamples(3, 0)
	s.AddTask("t", wire.TaskMetrics{PropletID: "p", Timestamp: wire.Timestamp{UptimeMS: 5}, Metrics: wire.ProcessMetrics{MemoryBytes: 1}}, sampleT0)
	s.AddTask("t", wire.TaskMetrics{PropletID: "p", Timestamp: wire.Timestamp{Time: sampleT0.Add(time.Hour)},
		Aggregated: &wire.AggregatedMetrics{SampleCount: 2}}, sampleT0)
	got, _ := s.TaskMetrics("t", 0, 10)
	if len(got) != 2 || !got[0].Timestamp.Time.Equal(sampleT0) || !got[1].Timestamp.Time.Equal(sampleT0.Add(time.Hour)) {
		t.Fatalf("timestamps: %+v", got)
	}
	if got[0].Aggregated != nil || got[1].Aggregated == nil || got[1].Aggregated.SampleCount != 2 || got[0].TaskID != "t" || got[0].PropletID != "p" {
		t.Fatalf("samples: %+v", got)
	}
}

// Past maxTasks windows, the task sampled least recently loses its window.
func TestSamples_TaskWindowsBounded(t *testing.T) {
	s := mqtt.NewSamples(2, 3)
	for _, id := range []string{"a", "b", "c", "a", "d"} { // b is the least recent when d comes
		s.AddTask(id, wire.TaskMetrics{PropletID: "p"}, sampleT0)
	}
	if _, tasks := s.Counts(); tasks != 3 {
		t.Fatalf("%d task windows, want 3", tasks)
	}
	for id, want := range map[string]int{"a": 2, "b": 0, "c": 1, "d": 1} {
		if _, total := s.TaskMetrics(id, 0, 10); total != want {
			t.Errorf("task %s: %d samples, want %d", id, total, want)
		}
	}
	s.ForgetTask("a")
	if _, total := s.TaskMetrics("a", 0, 10); total != 0 {
		t.Fatal("a forgotten task keeps its window")
	}
}

// The memory of full windows for 10,000 devices and 10,000 tasks, the
// figures docs/RATIONALE.md states. JETPROP_SAMPLES_MEMORY=1 prints them.
func TestSamples_Memory10k(t *testing.T) {
	if os.Getenv("JETPROP_SAMPLES_MEMORY") == "" {
		t.Skip("set JETPROP_SAMPLES_MEMORY=1 to measure")
	}
	before := heap()
	s := mqtt.NewSamples(0, 0)
	for d := range 10_000 {
		id := fmt.Sprintf("%08x-0000-4000-8000-000000000000", d)
		for i := range mqtt.DefaultMetricsSamples {
			s.AddProplet(id, propletSample(i), sampleT0)
		}
	}
	devices := heap() - before
	for d := range mqtt.DefaultMetricsTasks {
		id := fmt.Sprintf("%026d", d)
		for i := range mqtt.DefaultMetricsSamples {
			s.AddTask(id, wire.TaskMetrics{PropletID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Metrics: wire.ProcessMetrics{MemoryBytes: wire.Int(i)},
				Aggregated: &wire.AggregatedMetrics{SampleCount: wire.Int(i)}}, sampleT0)
		}
	}
	tasks := heap() - before - devices
	runtime.KeepAlive(s)
	t.Logf("10,000 devices x %d samples: %.1f MB; %d tasks x %d samples: %.1f MB",
		mqtt.DefaultMetricsSamples, float64(devices)/1e6, mqtt.DefaultMetricsTasks, mqtt.DefaultMetricsSamples, float64(tasks)/1e6)
}

func heap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
