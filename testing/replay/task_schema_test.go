package replay_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// schemaScenario is the scenario of testdata/task_schema.jsonl: Propeller's
// task fields (issue 13) in task.created, a recurring cron task that
// completes and runs again, and a broadcast task's run of one task per
// device.
var schemaScenario = []step{
	device(engine.Announce{ID: "pi-1"}),
	device(engine.Announce{ID: "pi-2"}),
	task(engine.CreateTask{ID: "c1", Spec: events.TaskCreated{Name: "add", Module: digest, Inputs: []string{"1", "2"}, TaskSchema: events.TaskSchema{
		Metadata: map[string]json.RawMessage{"site": json.RawMessage(`"lab"`), "floor": json.RawMessage(`3`)},
		Priority: 80, Schedule: "*/5 * * * * *", Recurring: true, Timezone: "Europe/Belgrade", RunIf: "success",
		Kind: engine.KindStandard, MonitoringProfile: json.RawMessage(`{"enabled":true}`),
	}}}),
	task(engine.ScheduleTask{ID: "c1", Device: "pi-1"}),
	result("c1", "pi-1", 1, `"3"`),
	task(engine.ScheduleTask{ID: "c1", Device: "pi-2"}), // the next firing
	result("c1", "pi-2", 2, `"3"`),
	task(engine.CreateTask{ID: "b1", Spec: events.TaskCreated{Name: "add", Module: digest, TaskSchema: events.TaskSchema{Broadcast: true}}}),
	task(engine.CreateTask{ID: engine.BroadcastTaskID("b1", 1, "pi-1"), Spec: events.TaskCreated{Name: "add", Module: digest, TargetDevice: "pi-1",
		TaskSchema: events.TaskSchema{BroadcastOf: "b1", BroadcastRun: 1}}}),
	task(engine.CreateTask{ID: engine.BroadcastTaskID("b1", 1, "pi-2"), Spec: events.TaskCreated{Name: "add", Module: digest, TargetDevice: "pi-2",
		TaskSchema: events.TaskSchema{BroadcastOf: "b1", BroadcastRun: 1}}}),
	task(engine.ScheduleTask{ID: "b1-1-pi-1", Device: "pi-1"}),
	task(engine.ScheduleTask{ID: "b1-1-pi-2", Device: "pi-2"}),
	result("b1-1-pi-1", "pi-1", 1, `"a"`),
	task(engine.RecordResult{ID: "b1-1-pi-2", Device: "pi-2", Attempt: 1, Error: "trap"}),
}

const schemaGolden = "testdata/task_schema.jsonl"

// The history of the schema scenario is the golden one, byte for byte,
// and replays to the states the handler returned.
func TestReplay_TaskSchema(t *testing.T) {
	store := events.NewMemory()
	tasks, devices := play(t, store, schemaScenario)
	envs, jsonl := record(t, store)
	if *update {
		if err := os.WriteFile(schemaGolden, jsonl, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(jsonl, want) {
		t.Fatalf("history differs from %s (run with -update if the change is intended):\n%s", schemaGolden, diffLines(jsonl, want))
	}
	checkReplay(t, want, envs, tasks, devices)
	c1 := tasks["c1"]
	if c1.State != engine.TaskCompleted || c1.Attempt != 2 || c1.EffectivePriority() != 80 || !c1.MetadataMatches(map[string]string{"floor": "3"}) {
		t.Fatalf("cron task %s attempt %d priority %d metadata %s", c1.State, c1.Attempt, c1.Priority, c1.Metadata)
	}
	run := engine.BroadcastRun{Run: 1, Tasks: []engine.Task{tasks["b1-1-pi-1"], tasks["b1-1-pi-2"]}}
	if run.State() != engine.TaskFailed {
		t.Fatalf("broadcast run %s, want failed (one device failed)", run.State())
	}
}
