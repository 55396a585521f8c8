package service_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/replay"
)

// benchFleet is a service whose read models hold n devices (every tenth
// offline) and, with mixed, 0 to 4 active tasks on each; without mixed
// every device is idle, so all of them tie. The read models are filled by
// applying envelopes directly: no store is followed.
func benchFleet(b *testing.B, n int, mixed bool) *fleetBench {
	b.Helper()
	f := &fleetBench{tasks: projections.NewTasks(codec), devices: projections.NewDevices(codec)}
	tasks, devices := f.tasks, f.devices
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	var devSeq uint64
	taskSeq := &f.taskSeq
	apply := func(p projections.Projection, seq *uint64, agg events.Aggregate, ev events.Event) {
		*seq++
		env, err := events.Wrap(agg, fmt.Sprintf("e%d", *seq), events.Meta{Time: t0}, ev)
		if err != nil {
			b.Fatal(err)
		}
		env.Seq = *seq
		if err := p.Apply(env); err != nil {
			b.Fatal(err)
		}
	}
	for _, i := range rng.Perm(n) { // ids arrive in no order
		id := fmt.Sprintf("dev-%05d", i)
		apply(devices, &devSeq, events.DeviceAggregate(id), events.DeviceAnnounced{Metadata: events.DeviceMetadata{Tags: []string{"site=a"}}})
		if i%10 == 9 {
			apply(devices, &devSeq, events.DeviceAggregate(id), events.DeviceOffline{Reason: "last will"})
		}
		if !mixed {
			continue
		}
		for k := range rng.IntN(5) {
			tid := fmt.Sprintf("t-%05d-%d", i, k)
			apply(tasks, taskSeq, events.TaskAggregate(tid), events.TaskCreated{Name: "add", Module: digest})
			apply(tasks, taskSeq, events.TaskAggregate(tid), events.TaskScheduled{Device: id, Attempt: 1})
		}
	}
	h := service.NewHandler(events.NewMemory(), codec, replay.NewFixedClock(t0, 0), replay.NewSeqIDs("b-"))
	f.svc = service.New(h, tasks, devices, nil)
	f.wfm = service.NewWorkflowManager(f.svc, replay.NewTimers(), nil)
	f.apply = apply
	return f
}

type fleetBench struct {
	svc     *service.Service
	wfm     *service.WorkflowManager
	tasks   *projections.Tasks
	devices *projections.Devices
	taskSeq uint64
	apply   func(p projections.Projection, seq *uint64, agg events.Aggregate, ev events.Event)
}

// BenchmarkPlace: choosing the device of one start (what StartTask does
// before it appends), on a static fleet.
//
//	go test -run '^$' -bench 'Place$' -benchmem ./engine/service/
func BenchmarkPlace(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, mixed := range []bool{false, true} {
			b.Run(fmt.Sprintf("devices=%d/loads=%s", n, map[bool]string{false: "idle", true: "mixed"}[mixed]), func(b *testing.B) {
				svc := benchFleet(b, n, mixed).svc
				b.ReportAllocs()
				for b.Loop() {
					if service.ServicePlace(svc, "") == "" {
						b.Fatal("no device")
					}
				}
			})
		}
	}
}

// BenchmarkObserved: what the workflow process manager reads of the
// devices for every reconcile.
//
//	go test -run '^$' -bench Observed -benchmem ./engine/service/
func BenchmarkObserved(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			wfm := benchFleet(b, n, true).wfm
			b.ReportAllocs()
			for b.Loop() {
				if len(service.ManagerObserved(wfm).Devices) == 0 {
					b.Fatal("no device")
				}
			}
		})
	}
}

// BenchmarkFoldLoad: what keeping the load current costs the tasks read
// model: one op applies a task.scheduled and a task.failed (the load of a
// device goes up and down again), envelopes encoded and decoded included.
//
//	go test -run '^$' -bench FoldLoad -benchmem ./engine/service/
func BenchmarkFoldLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			f := benchFleet(b, n, true)
			agg := events.TaskAggregate("cycling")
			f.apply(f.tasks, &f.taskSeq, agg, events.TaskCreated{Name: "add", Module: digest})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				dev := fmt.Sprintf("dev-%05d", i%n)
				f.apply(f.tasks, &f.taskSeq, agg, events.TaskScheduled{Device: dev, Attempt: i})
				f.apply(f.tasks, &f.taskSeq, agg, events.TaskFailed{Device: dev, Attempt: i, Reason: "trap"})
			}
		})
	}
}
