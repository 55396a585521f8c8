package engine_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

func TestDecideTask_Update(t *testing.T) {
	rename := events.TaskUpdated{Name: "mul", Inputs: []string{"4"}}
	tests := []struct {
		name    string
		task    engine.Task
		u       events.TaskUpdated
		want    []events.Event
		wantErr error
	}{
		{"pending", pending, rename, []events.Event{rename}, nil},
		{"completed: may run again", completed, rename, []events.Event{rename}, nil},
		{"failed", failed, rename, []events.Event{rename}, nil},
		{"stopped", stopped, rename, []events.Event{rename}, nil},
		{"scheduled", scheduled, rename, nil, domain.ErrInvalidState},
		{"running", running, rename, nil, domain.ErrInvalidState},
		{"no such task", none, rename, nil, domain.ErrNotFound},
		{"nothing changes", pending, events.TaskUpdated{Name: "add", Inputs: []string{"1", "2"}}, nil, nil},
		{"empty update", pending, events.TaskUpdated{}, nil, nil},
		{"past a bound", pending, events.TaskUpdated{MemoryMiB: -1}, nil, domain.ErrInvalid},
		{"bad env", pending, events.TaskUpdated{Env: map[string]string{"A=B": "x"}}, nil, domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.DecideTask(tc.task, engine.UpdateTask{ID: "t1", Update: tc.u})
			checkErr(t, err, tc.wantErr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestTask_ApplyUpdate(t *testing.T) {
	got := taskOf(created, sched1, started1, completed1, events.TaskUpdated{Name: "mul", Env: map[string]string{"K": "v"}})
	if got.Name != "mul" || got.Env["K"] != "v" || got.Inputs[0] != "1" || got.Module != digest || got.State != engine.TaskCompleted {
		t.Fatalf("after update %+v", got)
	}
	got = taskOf(created, events.TaskUpdated{Priority: 80, Metadata: map[string]json.RawMessage{"k": json.RawMessage(`"v"`)}})
	if got.Priority != 80 || string(got.Metadata["k"]) != `"v"` || got.Name != "add" {
		t.Fatalf("metadata and priority: %+v", got)
	}
	got = taskOf(created, events.TaskUpdated{ImageURL: "docker.io/x/y:1"})
	if got.ImageURL != "docker.io/x/y:1" || got.Module != "" || got.ModuleSize != 0 {
		t.Fatalf("a remote image replaces the module: %+v", got)
	}
	got = taskOf(createdOCI, events.TaskUpdated{Module: digest, ModuleSize: 9})
	if got.ImageURL != "" || got.Module != digest || got.ModuleSize != 9 {
		t.Fatalf("an uploaded module replaces the image: %+v", got)
	}
}

func TestDecideDevice_Remove(t *testing.T) {
	remove := engine.RemoveDevice{ID: "d1"}
	removed := []events.Event{events.DeviceRemoved{}}
	runDecideDevice(t, []decideDeviceTest{
		{"alive", devAlive, remove, removed, nil},
		{"offline", devOffline, remove, removed, nil},
		{"revoked", devRevoked, remove, removed, nil},
		{"never seen", devNone, remove, nil, domain.ErrNotFound},
		{"provisioned, never seen", deviceOf(provisioned), remove, nil, domain.ErrNotFound},
		{"removed already", deviceOf(announced, events.DeviceRemoved{}), remove, nil, domain.ErrNotFound},
		{"heartbeat after removal", deviceOf(announced, alive, events.DeviceRemoved{}), engine.Heartbeat{ID: "d1"}, []events.Event{events.DeviceAlive{}}, nil},
		{"announce after removal", deviceOf(announced, events.DeviceRemoved{}), engine.Announce{ID: "d1", Namespace: "ns", Metadata: meta}, []events.Event{announced}, nil},
		{"offline after removal", deviceOf(announced, events.DeviceRemoved{}), engine.MarkOffline{ID: "d1", Reason: "x"}, nil, nil},
	})
}

func TestDevice_ApplyRemoved(t *testing.T) {
	d := deviceOf(provisioned, announced, alive, events.DeviceRemoved{})
	if d.Seen() || d.State.Up() || d.Namespace != "" || d.Metadata.Hostname != "" || !d.Provisioned || d.KeyHash != keyHash || d.FirstSeen != t0 {
		t.Fatalf("removed %+v", d)
	}
	if d := deviceOf(announced, events.DeviceRemoved{}, alive); !d.Placeable() || d.State != engine.DeviceAlive {
		t.Fatalf("back after removal %+v", d)
	}
	own := events.DeviceAnnounced{Namespace: "ns", Metadata: meta, OwnTopics: true, Accepts: true}
	if d := deviceOf(own, events.DeviceRemoved{}, events.DeviceAlive{OwnTopics: true}); !d.AnswersStarts() {
		t.Fatalf("a device on its own topics that answers starts still does after removal and a heartbeat: %+v", d)
	}
}
