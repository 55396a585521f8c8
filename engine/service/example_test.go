package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/replay"
)

// A fast proplet answers before the dispatcher has marked the task started:
// the result is kept, and the late start changes nothing.
func ExampleHandler() {
	ctx := context.Background()
	clock := replay.NewFixedClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), time.Second)
	h := service.NewHandler(events.NewMemory(), events.DefaultCodec(), clock, replay.NewSeqIDs("ev-"))

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
