package projections_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// TestTasks_Counts: the counts by state follow every move, a deleted
// task leaves them, and they match a count over the whole read model.
func TestTasks_Counts(t *testing.T) {
	store := events.NewMemory()
	r := scenario(t, store)
	tasks, _ := catchup(t, store)
	want := map[engine.TaskState]int{engine.TaskRunning: 1, engine.TaskCompleted: 1, engine.TaskScheduled: 2}
	if got := tasks.Counts(); !maps.Equal(got, want) {
		t.Fatalf("Counts() = %v, want %v", got, want)
	}

	r.task(create("t6"), engine.StopTask{ID: "t1"}, engine.DeleteTask{ID: "t1"}, engine.DeleteTask{ID: "t2"})
	tasks, _ = catchup(t, store)
	want = map[engine.TaskState]int{engine.TaskPending: 1, engine.TaskScheduled: 2}
	if got := tasks.Counts(); !maps.Equal(got, want) {
		t.Fatalf("after a create and two deletes: Counts() = %v, want %v", got, want)
	}
	if got, recount := tasks.Counts(), countBy(tasks.All(), func(t engine.Task) engine.TaskState { return t.State }); !maps.Equal(got, recount) {
		t.Fatalf("Counts() = %v, a count over All() %v", got, recount)
	}
}

// TestDevices_Counts: every device has one status; revoked wins over the
// state, a provisioned device never seen is "unknown".
func TestDevices_Counts(t *testing.T) {
	store := events.NewMemory()
	r := scenario(t, store)
	key := strings.Repeat("ab", 32)
	r.device(
		engine.ProvisionDevice{ID: "pi-4", KeyHash: key},
		engine.ProvisionDevice{ID: "pi-5", KeyHash: key}, engine.Heartbeat{ID: "pi-5"},
		engine.RevokeDevice{ID: "pi-5", Reason: "lost"},
	)
	_, devices := catchup(t, store)
	want := map[string]int{"alive": 1, "announced": 1, "offline": 1, "unknown": 1, projections.StatusRevoked: 1}
	if got := devices.Counts(); !maps.Equal(got, want) {
		t.Fatalf("Counts() = %v, want %v", got, want)
	}
	if got, recount := devices.Counts(), countBy(devices.List(), projections.DeviceStatus); !maps.Equal(got, recount) {
		t.Fatalf("Counts() = %v, a count over List() %v", got, recount)
	}
}

func TestDeviceStatus(t *testing.T) {
	tests := []struct {
		name string
		d    engine.Device
		want string
	}{
		{"never seen", engine.Device{Provisioned: true}, "unknown"},
		{"announced", engine.Device{State: engine.DeviceAnnounced}, "announced"},
		{"alive", engine.Device{State: engine.DeviceAlive}, "alive"},
		{"offline", engine.Device{State: engine.DeviceOffline}, "offline"},
		{"revoked", engine.Device{State: engine.DeviceOffline, Revoked: true}, projections.StatusRevoked},
		{"unreachable", engine.Device{State: engine.DeviceAlive, Unreachable: "did not accept"}, projections.StatusUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := projections.DeviceStatus(tc.d); got != tc.want {
				t.Fatalf("DeviceStatus = %q, want %q", got, tc.want)
			}
		})
	}
}

func countBy[T any, K comparable](xs []T, key func(T) K) map[K]int {
	out := map[K]int{}
	for _, x := range xs {
		out[key(x)]++
	}
	return out
}
