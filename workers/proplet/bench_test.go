package proplet_test

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// BenchmarkDelivery distributes a module of each size to one proplet over
// MQTT (start → request → chunks → assembled, verified, cached → compiled
// → run → result), a new module (new digest) each iteration, and reports
// MiB/s next to a raw object store get of the same module in the same run.
// Engine side, broker and proplet share the process.
//
//	go test -run '^$' -bench Delivery -benchtime 3x ./workers/proplet/
func BenchmarkDelivery(b *testing.B) {
	for _, size := range []int{1 << 20, 10 << 20, 50 << 20} {
		b.Run(fmt.Sprintf("size=%dMiB", size>>20), func(b *testing.B) { benchDelivery(b, size) })
	}
}

func benchDelivery(b *testing.B, size int) {
	rig := newEngineRig(b, rigOptions{})
	m := newManagerAt(b, rig.ns.MQTTURL())
	cfg := deliveryConfig(b, rig, "bench-1")
	cfg.ChunkTimeout = 3 * time.Second
	startProplet(b, cfg, m)
	var deliver, get time.Duration
	for i := range b.N {
		b.StopTimer()
		module := wasmfixtures.Padded(wasmfixtures.Add(), size)
		digest := rig.put(module)
		module = nil
		start := time.Now()
		if _, err := rig.modules.Get(context.Background(), digest); err != nil {
			b.Fatal(err)
		}
		get += time.Since(start)
		b.StartTimer()
		task := fmt.Sprintf("bench-%d", i)
		start = time.Now()
		m.start(startFor(task, digest, size, cfg.EntityID))
		awaitFive(b, m, task)
		deliver += time.Since(start)
	}
	mib := float64(size) / (1 << 20) * float64(b.N)
	b.ReportMetric(mib/deliver.Seconds(), "MiB/s")
	b.ReportMetric(mib/get.Seconds(), "get-MiB/s")
	b.ReportMetric(100*get.Seconds()/deliver.Seconds(), "%-of-get")
}

// BenchmarkDeliveryFleet sends one 10 MiB module to 10 proplets at once
// and reports the time until all ten ran it.
//
//	go test -run '^$' -bench DeliveryFleet -benchtime 3x ./workers/proplet/
func BenchmarkDeliveryFleet(b *testing.B) {
	const size, fleet = 10 << 20, 10
	rig := newEngineRig(b, rigOptions{})
	m := newManagerAt(b, rig.ns.MQTTURL())
	var ids []string
	for i := range fleet {
		cfg := deliveryConfig(b, rig, fmt.Sprintf("fleet-%d", i))
		cfg.ChunkTimeout = 3 * time.Second
		startProplet(b, cfg, m)
		ids = append(ids, cfg.EntityID)
	}
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		digest := rig.put(wasmfixtures.Padded(wasmfixtures.Add(), size))
		b.StartTimer()
		start := time.Now()
		for _, id := range ids {
			m.start(startFor(fmt.Sprintf("fleet-%d-%s", i, id), digest, size, id))
		}
		for _, id := range ids {
			awaitFive(b, m, fmt.Sprintf("fleet-%d-%s", i, id))
		}
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-for-10")
	b.ReportMetric(float64(size*fleet)/(1<<20)/(total.Seconds()/float64(b.N)), "MiB/s-total")
}

// BenchmarkChunkServerMemory measures the engine side while it serves a
// 50 MiB module to one subscriber that only counts the chunks. Every 5 ms
// it samples runtime.MemStats.HeapInuse (garbage not yet collected
// included); with live=true it collects first and samples HeapAlloc, the
// live heap (which slows the transfer). The embedded nats-server shares
// the heap: its block cache and S2 buffers are in the numbers.
//
//	go test -run '^$' -bench ChunkServerMemory -benchtime 3x ./workers/proplet/
func BenchmarkChunkServerMemory(b *testing.B) {
	for _, live := range []bool{false, true} {
		b.Run(fmt.Sprintf("live=%v", live), func(b *testing.B) { benchChunkServerMemory(b, live) })
	}
}

func benchChunkServerMemory(b *testing.B, live bool) {
	const size = 50 << 20
	rig := newEngineRig(b, rigOptions{})
	var got atomic.Int64
	sub := connectClient(b, rig.ns.MQTTURL(), "counter")
	tok := sub.Subscribe(topics.Topic(wire.PropletChunkTopic("counter")), 0, func(_ paho.Client, msg paho.Message) {
		got.Add(1)
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	var base, peak, took float64
	for range b.N {
		b.StopTimer()
		digest := rig.put(wasmfixtures.Padded(wasmfixtures.Add(), size))
		got.Store(0)
		before := heap(true)
		b.StartTimer()
		start := time.Now()
		stop := sampleHeap(live)
		if err := rig.server.Request(context.Background(), wire.ModuleRequest{AppName: digest, PropletID: "counter"}); err != nil {
			b.Fatal(err)
		}
		tr := rig.waitTransfer(digest, "counter")
		high := stop()
		took += time.Since(start).Seconds()
		if int(got.Load()) < tr.Total*9/10 { // QoS 0: a chunk may be dropped
			b.Fatalf("%d of %d chunks arrived", got.Load(), tr.Total)
		}
		base, peak = base+float64(before)/(1<<20), peak+float64(high)/(1<<20)
	}
	n := float64(b.N)
	b.ReportMetric(base/n, "heap-before-MiB")
	b.ReportMetric(peak/n, "heap-peak-MiB")
	b.ReportMetric((peak-base)/n, "heap-growth-MiB")
	b.ReportMetric(size/(1<<20)/(took/n), "MiB/s")
}

// heap returns the live heap after a collection (gc), else HeapInuse.
func heap(gc bool) uint64 {
	if gc {
		goruntime.GC()
	}
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	if gc {
		return ms.HeapAlloc
	}
	return ms.HeapInuse
}

// sampleHeap samples heap(gc) every 5 ms until the returned func is
// called, which returns the highest sample.
func sampleHeap(gc bool) func() uint64 {
	var high atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if h := heap(gc); h > high.Load() {
				high.Store(h)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return high.Load()
	}
}

// awaitFive polls every millisecond (CheckFor backs off to 50 ms, too
// coarse to time a 1 MiB delivery) for a result of 5.
func awaitFive(b *testing.B, m *manager, taskID string) {
	deadline := time.Now().Add(longWait)
	for time.Now().Before(deadline) {
		if rs, raws := m.results(taskID); len(rs) > 0 {
			if rs[0].Failed() || rs[0].Text() != "5" {
				b.Fatalf("result %s", raws[0])
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("no result for %s", taskID)
}
