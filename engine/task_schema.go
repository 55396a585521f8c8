package engine

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Bounds and values of the Propeller task fields jetprop implements
// (events.TaskSchema). docs/limits.md lists the bounds.
const (
	// MaxMetadataEntries bounds the keys of a task's metadata.
	MaxMetadataEntries = 64
	// MaxMetadataKeyLen bounds a metadata key, in bytes.
	MaxMetadataKeyLen = 256
	// MaxMetadataBytes bounds a task's metadata as stored (keys and
	// compact JSON values together), in bytes. Propeller allows 1 MB; a
	// task's creation event must fit in the broker's 1 MiB message with
	// its inputs and env, so jetprop keeps labels to labels.
	MaxMetadataBytes = 16 << 10
	// MaxMonitoringProfile bounds a task's monitoring_profile JSON, in
	// bytes.
	MaxMonitoringProfile = 4 << 10
	// MaxScheduleLen bounds a cron expression, in bytes.
	MaxScheduleLen = 256

	// MinPriority and MaxPriority bound a task's priority (Propeller's
	// range); DefaultPriority is the priority of a task that gives none
	// (or 0, as Propeller reads it).
	MinPriority     = 0
	MaxPriority     = 100
	DefaultPriority = 50

	// KindStandard is the only task kind jetprop runs; Propeller's
	// KindFederated (federated learning rounds) is refused.
	KindStandard  = "standard"
	KindFederated = "federated"

	// RunIfSuccess and RunIfFailure are the run_if values of a task
	// (Propeller's; workflow steps also take "always").
	TaskRunIfSuccess = "success"
	TaskRunIfFailure = "failure"
)

// CheckTaskSchema checks a task's Propeller fields: metadata and the
// monitoring profile within their bounds, priority in its range, a cron
// schedule that parses with a known time zone, a known run_if and kind,
// and no broadcast to a target device. Its error wraps domain.ErrInvalid
// and names the field.
func CheckTaskSchema(t events.TaskCreated) error {
	for _, check := range []func(events.TaskCreated) error{checkMetadata, checkPriorityKind, checkSchedule, checkPlacementFields} {
		if err := check(t); err != nil {
			return err
		}
	}
	return nil
}

func checkMetadata(t events.TaskCreated) error {
	if len(t.Metadata) > MaxMetadataEntries {
		return boundErr("metadata", len(t.Metadata), MaxMetadataEntries, "keys")
	}
	n := 0
	for _, k := range slices.Sorted(maps.Keys(t.Metadata)) {
		switch {
		case k == "":
			return fmt.Errorf("%w: metadata: a key must not be empty", domain.ErrInvalid)
		case len(k) > MaxMetadataKeyLen:
			return boundErr("metadata key "+clip(k), len(k), MaxMetadataKeyLen, "bytes")
		case !json.Valid(t.Metadata[k]):
			return fmt.Errorf("%w: metadata %s: not a JSON value", domain.ErrInvalid, clip(k))
		}
		n += len(k) + len(t.Metadata[k])
	}
	if n > MaxMetadataBytes {
		return boundErr("metadata", n, MaxMetadataBytes, "bytes")
	}
	if len(t.MonitoringProfile) > MaxMonitoringProfile {
		return boundErr("monitoring_profile", len(t.MonitoringProfile), MaxMonitoringProfile, "bytes")
	}
	return nil
}

func checkPriorityKind(t events.TaskCreated) error {
	switch {
	case t.Priority < MinPriority || t.Priority > MaxPriority:
		return fmt.Errorf("%w: priority must be between %d and %d, got %d", domain.ErrInvalid, MinPriority, MaxPriority, t.Priority)
	case t.Kind == KindFederated:
		return fmt.Errorf("%w: kind %q is not supported (only %q: jetprop has no federated learning coordinator)", domain.ErrInvalid, t.Kind, KindStandard)
	case t.Kind != "" && t.Kind != KindStandard:
		return fmt.Errorf("%w: kind %q: want %q or %q", domain.ErrInvalid, t.Kind, KindStandard, KindFederated)
	case t.RunIf != "" && t.RunIf != TaskRunIfSuccess && t.RunIf != TaskRunIfFailure:
		return fmt.Errorf("%w: run_if %q: want %q or %q", domain.ErrInvalid, t.RunIf, TaskRunIfSuccess, TaskRunIfFailure)
	}
	return nil
}

func checkSchedule(t events.TaskCreated) error {
	if t.Schedule == "" {
		if t.Recurring || t.Timezone != "" {
			return fmt.Errorf("%w: is_recurring and timezone need a schedule (a cron expression)", domain.ErrInvalid)
		}
		return nil
	}
	if len(t.Schedule) > MaxScheduleLen {
		return boundErr("schedule", len(t.Schedule), MaxScheduleLen, "bytes")
	}
	if err := ValidateCron(t.Schedule); err != nil {
		return fmt.Errorf("%w: schedule %s: %v", domain.ErrInvalid, clip(t.Schedule), err)
	}
	if t.Timezone != "" {
		if _, err := time.LoadLocation(t.Timezone); err != nil {
			return fmt.Errorf("%w: timezone %s: %v", domain.ErrInvalid, clip(t.Timezone), err)
		}
	}
	return nil
}

func checkPlacementFields(t events.TaskCreated) error {
	switch {
	case t.Broadcast && t.TargetDevice != "":
		return fmt.Errorf("%w: broadcast and proplet_id are mutually exclusive", domain.ErrInvalid)
	case t.Broadcast && t.Daemon:
		return fmt.Errorf("%w: a broadcast task cannot be a daemon (its results are collected per device)", domain.ErrInvalid)
	}
	return nil
}

// EffectivePriority is the task's priority with its default.
func (t Task) EffectivePriority() int {
	if t.Priority == 0 {
		return DefaultPriority
	}
	return t.Priority
}

// ByPriority orders tasks that wait for the same thing: higher priority
// first, then older (created first), then by id, so the order is the same
// on every replica and every replay.
func ByPriority(a, b Task) int {
	if pa, pb := a.EffectivePriority(), b.EffectivePriority(); pa != pb {
		return pb - pa
	}
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// MetadataMatches reports whether every key of want is in the task's
// metadata with that value: a JSON string equal to the text, or a JSON
// value (number, boolean, null, object) whose compact text is the text.
func (t Task) MetadataMatches(want map[string]string) bool {
	for k, v := range want {
		raw, ok := t.Metadata[k]
		if !ok {
			return false
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s != v {
				return false
			}
		} else if string(raw) != v {
			return false
		}
	}
	return true
}

// BroadcastRun is one run of a broadcast task: the tasks it made, one per
// device that was placeable when it started, sorted by device.
type BroadcastRun struct {
	Run   int
	Tasks []Task
}

// State is the run's state as the broadcast task shows it: pending before
// its first run, running while a device's task is pending or active,
// completed when every one completed, else failed (or stopped when every
// one that did not complete was stopped).
func (b BroadcastRun) State() TaskState {
	if len(b.Tasks) == 0 {
		return TaskPending
	}
	state := TaskCompleted
	for _, t := range b.Tasks {
		switch {
		case !t.State.Terminal():
			return TaskRunning
		case t.State == TaskFailed:
			state = TaskFailed
		case t.State == TaskStopped && state == TaskCompleted:
			state = TaskStopped
		}
	}
	return state
}

// BroadcastTaskID is the id of the task broadcast task id runs on device
// in its run: "<id>-<run>-<device>", or, when that is longer than an id
// may be, "<id prefix>-<run>-<sha256 of the device, 16 hex>".
func BroadcastTaskID(id string, run int, device string) string {
	full := fmt.Sprintf("%s-%d-%s", id, run, device)
	if len(full) <= events.MaxIDLen {
		return full
	}
	sum := sha256.Sum256([]byte(device))
	suffix := fmt.Sprintf("-%d-%x", run, sum[:8])
	return id[:min(len(id), events.MaxIDLen-len(suffix))] + suffix
}
