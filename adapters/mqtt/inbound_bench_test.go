package mqtt_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// benchLimit is a rate limit the benchmarks never reach: the limiter
// runs, and drops nothing.
var benchLimit = mqtt.RateLimit{Rate: 1e9, Burst: 1 << 30}

// unlimited turns a rate limit off.
var unlimited = mqtt.RateLimit{Rate: -1}

// benchWorkers are the worker counts the benchmarks compare; 1 records
// one message of each lane at a time.
var benchWorkers = []int{1, 4, 16, 64}

// BenchmarkInbound measures how fast Inbound works off a backlog: EDGE_IN
// holds 100,000 messages of 1,000 devices (each a discovery, then 50
// results of its own tasks, scheduled beforehand through the handler, and
// 49 heartbeats, interleaved; the devices' messages interleaved too), and
// the clock runs from the start of Inbound until all are settled. The
// sub-benchmarks heartbeats and results hold 100,000 of one kind. The
// tasks outnumber the handler's cache, so most results load their task;
// in results-cached and mix-cached (15 results, and 15 heartbeats, per
// device) they do not, as in a running fleet, where a result is of a
// task the handler scheduled a moment before.
//
//	go test -run '^$' -bench 'Inbound$' -benchtime 1x ./adapters/mqtt/
//
// msgs/s depends on what else runs on the box; cpu-µs/msg (the process's
// CPU time, the embedded server's included, per message) does not.
func BenchmarkInbound(b *testing.B) {
	mixes := []struct {
		name            string
		results, hearts int // per device, besides one discovery
		workers         []int
	}{
		{"mix", 50, 49, benchWorkers},
		{"heartbeats", 0, 99, []int{1, 16}},
		{"results", 99, 0, []int{1, 16}},
		// As in a running fleet: the results are of tasks the handler
		// wrote lately (it started them), so it has their state cached.
		{"results-cached", 15, 0, []int{16}},
		{"mix-cached", 15, 15, []int{16}},
	}
	for _, mx := range mixes {
		for _, k := range mx.workers {
			b.Run(fmt.Sprintf("%s/workers=%d", mx.name, k), func(b *testing.B) {
				benchBacklog(b, k, 1000, mx.results, mx.hearts)
			})
		}
	}
}

func benchBacklog(b *testing.B, workers, devices, results, hearts int) {
	rig := newEdgeRig(b, mqtt.InboundConfig{Workers: workers, WorkLimit: benchLimit, LivenessLimit: benchLimit})
	var total, cpu time.Duration
	var n int
	for i := range b.N {
		run := strconv.Itoa(i)
		msgs := rig.prepareBacklog(b, fleet(run, devices), results, hearts)
		want := rig.settled() + uint64(len(msgs))
		start, cpu0 := time.Now(), cpuTime(b)
		stop := rig.run(b)
		for rig.settled() < want {
			time.Sleep(time.Millisecond) // poll: the run takes seconds
		}
		total += time.Since(start)
		cpu += cpuTime(b) - cpu0
		stop()
		n += len(msgs)
		if s := rig.in.Stats(); s.Retried+s.Malformed+s.Ignored != 0 {
			b.Fatalf("stats %+v: every message should be recorded", s)
		}
	}
	b.ReportMetric(float64(n)/total.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the CPU time this process has used (server and client: the
// server is embedded), which other load on the box does not inflate.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// prepareBacklog schedules the tasks the devices report on, then stores
// the devices' messages in EDGE_IN: per device a discovery, then its
// results and heartbeats alternating, the devices interleaved. The clock
// is stopped meanwhile.
func (r *edgeRig) prepareBacklog(b *testing.B, fl []device, results, hearts int) []edgeMsg {
	b.StopTimer()
	defer b.StartTimer()
	var ids []string
	for _, d := range fl {
		for j := range results {
			ids = append(ids, fmt.Sprintf("%s-t%d", d.id, j))
		}
	}
	r.scheduleTasks(b, ids, func(i int) string { return fl[i/results].id })
	var msgs []edgeMsg
	for _, d := range fl {
		msgs = append(msgs, d.create())
	}
	for j := range max(results, hearts) {
		for di, d := range fl {
			if j < results {
				msgs = append(msgs, d.result(ids[di*results+j]))
			}
			if j < hearts {
				msgs = append(msgs, d.alive(wire.StatusAlive))
			}
		}
	}
	r.publish(b, msgs)
	return msgs
}

// BenchmarkInbound_HeartbeatLatency measures how long a heartbeat waits
// while results flood in. Eight goroutines play the API at full load:
// each creates a task, schedules it on the next of 1,000 devices, and has
// that device publish its result to EDGE_IN at once (every fourth time a
// heartbeat of it as well), as fast as they can. A probe device, one of
// the thousand (so its own results flood in too), alternates its last
// will and a heartbeat, one pair every probeEvery; each op is one
// heartbeat, timed from the moment EDGE_IN stored it to the time of the
// device.alive event it causes. sent/s and settled/s are the device
// messages published and settled meanwhile: an Inbound that keeps up
// settles what is sent, and backlog is what it has not settled at the end.
//
//	go test -run '^$' -bench 'Inbound_HeartbeatLatency' -benchtime 200x ./adapters/mqtt/
func BenchmarkInbound_HeartbeatLatency(b *testing.B) {
	for _, k := range []int{1, 16} {
		b.Run(fmt.Sprintf("workers=%d", k), func(b *testing.B) { benchHeartbeatLatency(b, k) })
	}
}

func benchHeartbeatLatency(b *testing.B, workers int) {
	rig := newEdgeRig(b, mqtt.InboundConfig{Workers: workers, WorkLimit: benchLimit, LivenessLimit: benchLimit})
	fl := fleet("lat", 1000)
	probe := fl[0]
	evs := make(chan *nats.Msg, 16)
	sub, err := rig.nc.ChanSubscribe(eventsSubject(probe.id), evs)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	stop := rig.run(b)
	defer stop()
	// The probe exists and is alive before the clock starts.
	rig.publish(b, []edgeMsg{probe.create(), probe.alive(wire.StatusAlive)})
	waitEvent(b, evs, "device.announced")
	waitEvent(b, evs, "device.alive")

	load := rig.startLoad(fl, 8)
	var lat []time.Duration
	settled0 := rig.settled()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	b.ResetTimer()
	for range b.N {
		<-tick.C
		rig.publish(b, []edgeMsg{probe.alive(wire.StatusOffline)})
		waitEvent(b, evs, "device.offline")
		stored := rig.storeTime(b, probe.alive(wire.StatusAlive))
		at := waitEvent(b, evs, "device.alive")
		lat = append(lat, at.Sub(stored))
	}
	b.StopTimer()
	settled, sent := rig.settled()-settled0, load.stop(b)
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "sent/s")
	b.ReportMetric(float64(settled)/b.Elapsed().Seconds(), "settled/s")
	b.ReportMetric(float64(rig.behind(b)), "backlog")
	b.ReportMetric(0, "ns/op")
}

const (
	// probeEvery paces the probe, so a run of N probes keeps the load on
	// for N times this long at least.
	probeEvery = 50 * time.Millisecond
	// probeTimeout bounds the wait for one probe event.
	probeTimeout = 2 * time.Minute
)

func eventsSubject(device string) string {
	return events.DeviceAggregate(device).Subject()
}

// waitEvent waits for the next event of the probe and returns its time.
func waitEvent(b *testing.B, ch <-chan *nats.Msg, typ string) time.Time {
	b.Helper()
	select {
	case m := <-ch:
		if got := m.Header.Get(events.HeaderType); got != typ {
			b.Fatalf("probe event %s, want %s", got, typ)
		}
		at, err := time.Parse(time.RFC3339Nano, m.Header.Get(events.HeaderTime))
		if err != nil {
			b.Fatal(err)
		}
		return at
	case <-time.After(probeTimeout):
		b.Fatalf("no %s of the probe within %s", typ, probeTimeout)
	}
	return time.Time{}
}

// storeTime publishes m to EDGE_IN and returns the time the stream
// stored it.
func (r *edgeRig) storeTime(b *testing.B, m edgeMsg) time.Time {
	b.Helper()
	ctx := context.Background()
	ack, err := r.js.Publish(ctx, wire.Subject(m.topic), m.data)
	if err != nil {
		b.Fatal(err)
	}
	st, err := r.js.Stream(ctx, mqtt.EdgeStream)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		b.Fatal(err)
	}
	return raw.Time
}

// behind is how many messages of EDGE_IN the work consumer has not settled.
func (r *edgeRig) behind(b *testing.B) uint64 {
	b.Helper()
	c, err := r.js.Consumer(context.Background(), mqtt.EdgeStream, mqtt.EdgeConsumer)
	if err != nil {
		b.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.NumPending + uint64(info.NumAckPending)
}

// apiLoad is the goroutines that create, schedule and report tasks.
type apiLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sent   atomic.Int64 // device messages published
	err    atomic.Pointer[error]
}

// startLoad starts the API load on the devices fl, on goroutines goroutines.
func (r *edgeRig) startLoad(fl []device, goroutines int) *apiLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &apiLoad{cancel: cancel}
	var next atomic.Int64
	for g := range goroutines {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				n := next.Add(1)
				d := fl[int(n)%len(fl)]
				sent, err := r.scheduleAndReport(ctx, d, fmt.Sprintf("load-%d-%d", g, i), n%4 == 0 && d != fl[0])
				l.sent.Add(int64(sent))
				if err != nil {
					if ctx.Err() == nil {
						l.err.Store(&err)
					}
					return
				}
			}
		})
	}
	return l
}

// scheduleAndReport is one round of the API load; it returns how many
// device messages it published.
func (r *edgeRig) scheduleAndReport(ctx context.Context, d device, id string, heartbeat bool) (int, error) {
	spec := events.TaskCreated{Name: "main", ImageURL: "fleet:1"}
	if _, err := r.handler.Task(ctx, engine.CreateTask{ID: id, Spec: spec}); err != nil {
		return 0, err
	}
	if _, err := r.handler.Task(ctx, engine.ScheduleTask{ID: id, Device: d.id}); err != nil {
		return 0, err
	}
	msgs := []edgeMsg{d.result(id)}
	if heartbeat {
		msgs = append(msgs, d.alive(wire.StatusAlive))
	}
	for i, m := range msgs {
		if _, err := r.js.Publish(ctx, wire.Subject(m.topic), m.data); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

func (l *apiLoad) stop(b *testing.B) int64 {
	l.cancel()
	l.wg.Wait()
	if err := l.err.Load(); err != nil {
		b.Fatalf("API load: %v", *err)
	}
	return l.sent.Load()
}
