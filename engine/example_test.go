package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/replay"
)

// A fast proplet answers before the dispatcher has marked the task started:
// the result is kept, and the late start changes nothing.
func ExampleHandler() {
	ctx := context.Background()
	clock := replay.NewFixedClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), time.Second)
	h := engine.NewHandler(events.NewMemory(), events.DefaultRegistry(), clock, replay.NewSeqIDs("ev-"))

	spec := events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1", Inputs: []string{"1", "2"}}
	h.Task(ctx, engine.CreateTask{ID: "t1", Spec: spec})
	t, _ := h.Task(ctx, engine.ScheduleTask{ID: "t1", Device: "pi-1"})
	fmt.Println(t.State, t.Device, t.Attempt)
	t, _ = h.Task(ctx, engine.RecordResult{ID: "t1", Device: "pi-1", Result: json.RawMessage(`"3"`)})
	fmt.Println(t.State, string(t.Result))
	t, _ = h.Task(ctx, engine.MarkStarted{ID: "t1", Attempt: 1})
	fmt.Println(t.State, t.Seq)
	_, err := h.Task(ctx, engine.RecordResult{ID: "t1", Device: "pi-1", Attempt: 2})
	fmt.Println("result of another attempt is stale:", errors.Is(err, domain.ErrStale))
	// Output:
	// scheduled pi-1 1
	// completed "3"
	// completed 3
	// result of another attempt is stale: true
}

func ExampleDecideDevice() {
	var d engine.Device
	evs, _ := engine.DecideDevice(d, engine.MarkOffline{ID: "pi-9", Reason: "last will"})
	fmt.Println(len(evs), "events: a last will never creates a device")
	evs, _ = engine.DecideDevice(d, engine.Heartbeat{ID: "pi-9"})
	fmt.Println(evs[0].EventType())
	// Output:
	// 0 events: a last will never creates a device
	// device.alive
}

func ExampleParseArtifactRef() {
	for _, s := range []string{"vision:1.2", "vision", "ghcr.io/x/vision:1"} {
		ref, err := engine.ParseArtifactRef(s)
		fmt.Printf("%q %q %v\n", ref.Name, ref.Tag, errors.Is(err, domain.ErrInvalid))
	}
	// Output:
	// "vision" "1.2" false
	// "vision" "latest" false
	// "" "" true
}
