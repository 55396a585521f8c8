package engine_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

func TestDecideTask_ScheduleCron(t *testing.T) {
	cron := created
	cron.Schedule, cron.Recurring = "* * * * *", true
	cronDone := taskOf(cron, sched1, started1, completed1)
	runDecideTask(t, []decideTaskTest{
		{name: "a completed cron task runs again", task: cronDone, cmd: engine.ScheduleTask{ID: "t1", Device: "dev-b"}, want: evs(sched2)},
		{name: "a completed task does not", task: completed, cmd: engine.ScheduleTask{ID: "t1", Device: "dev-b"}, wantErr: domain.ErrInvalidState},
		{name: "bad priority", task: none, cmd: engine.CreateTask{ID: "t1", Spec: withSchema(events.TaskSchema{Priority: 101})}, wantErr: domain.ErrInvalid},
		{name: "bad cron", task: none, cmd: engine.CreateTask{ID: "t1", Spec: withSchema(events.TaskSchema{Schedule: "* *"})}, wantErr: domain.ErrInvalid},
		{name: "bad metadata value", task: none, cmd: engine.CreateTask{ID: "t1", Spec: withSchema(events.TaskSchema{Metadata: map[string]json.RawMessage{"a": json.RawMessage("{")}})}, wantErr: domain.ErrInvalid},
	})
}

func withSchema(s events.TaskSchema) events.TaskCreated {
	c := created
	c.TaskSchema = s
	return c
}

func TestByPriority(t *testing.T) {
	at := func(id string, p int, sec int) engine.Task {
		tk := engine.Task{ID: id, CreatedAt: t0.Add(time.Duration(sec) * time.Second)}
		tk.Priority = p
		return tk
	}
	tasks := []engine.Task{at("a", 10, 0), at("b", 0, 3), at("c", 90, 5), at("d", 50, 1), at("e", 50, 1)}
	slices.SortFunc(tasks, engine.ByPriority)
	var got []string
	for _, tk := range tasks {
		got = append(got, tk.ID)
	}
	if want := []string{"c", "d", "e", "b", "a"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v (priority, then age, then id; 0 is 50)", got, want)
	}
}

func TestTask_MetadataMatches(t *testing.T) {
	var tk engine.Task
	tk.Metadata = map[string]json.RawMessage{"site": json.RawMessage(`"lab"`), "floor": json.RawMessage(`3`), "hot": json.RawMessage(`true`)}
	tests := []struct {
		want  map[string]string
		match bool
	}{
		{nil, true},
		{map[string]string{"site": "lab"}, true},
		{map[string]string{"site": "lab", "floor": "3", "hot": "true"}, true},
		{map[string]string{"site": "Lab"}, false},
		{map[string]string{"floor": `"3"`}, false},
		{map[string]string{"missing": ""}, false},
	}
	for _, tc := range tests {
		if got := tk.MetadataMatches(tc.want); got != tc.match {
			t.Errorf("MetadataMatches(%v) = %v, want %v", tc.want, got, tc.match)
		}
	}
}
