package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// schema checks the fields of Propeller's task JSON that jetprop refuses
// when set, and returns the ones it implements; the engine checks their
// bounds and values (engine.CheckTaskSchema).
func (req TaskSchemaRequest) schema(kind string) (events.TaskSchema, error) {
	if err := req.refused(); err != nil {
		return events.TaskSchema{}, err
	}
	s := events.TaskSchema{
		Priority: req.Priority, Broadcast: req.Broadcast, Schedule: req.Schedule, Recurring: req.IsRecurring,
		Timezone: req.Timezone, RunIf: req.RunIf, Kind: kind,
	}
	if len(req.Metadata) > 0 {
		s.Metadata = make(map[string]json.RawMessage, len(req.Metadata))
		for _, k := range slices.Sorted(maps.Keys(req.Metadata)) {
			s.Metadata[k] = compactJSON(req.Metadata[k])
		}
	}
	if p := compactJSON(req.MonitoringProfile); len(p) > 0 && string(p) != "null" {
		if p[0] != '{' {
			return events.TaskSchema{}, badRequest("monitoring_profile: want a JSON object")
		}
		s.MonitoringProfile = p
	}
	return s, nil
}

// refused names the first field set that jetprop does not implement.
func (req TaskSchemaRequest) refused() error {
	switch {
	case req.Encrypted:
		return badRequest("encrypted: encrypted workloads are not supported (send encrypted: false or leave it out)")
	case req.KBSResourcePath != "":
		return badRequest("kbs_resource_path: encrypted workloads (a KBS) are not supported")
	case req.HalStoragePath != nil && *req.HalStoragePath != "":
		return badRequest("hal_storage_path: HAL storage is not supported")
	case len(req.DependsOn) > 0:
		return badRequest("depends_on: not supported on POST /tasks; create dependent tasks together with POST /workflows or POST /jobs")
	}
	return nil
}

// compactJSON is raw without insignificant space (raw when it is not
// valid JSON, which the decoder has already refused).
func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// MaxMetadataFilters bounds the metadata conditions of one GET /tasks.
const MaxMetadataFilters = 16

// metadataFilter reads GET /tasks's metadata conditions: each
// ?metadata=key:value (several: all must hold), or Propeller's
// ?metadata={"key":"value",...} (a JSON object). Nil when there is none.
func metadataFilter(r *http.Request) (map[string]string, error) {
	vals := r.URL.Query()["metadata"]
	if len(vals) == 0 {
		return nil, nil
	}
	want := map[string]string{}
	for _, v := range vals {
		if err := addMetadataCondition(want, v); err != nil {
			return nil, err
		}
	}
	if len(want) > MaxMetadataFilters {
		return nil, badRequest("metadata: %d conditions, more than the limit of %d", len(want), MaxMetadataFilters)
	}
	return want, nil
}

func addMetadataCondition(want map[string]string, v string) error {
	if strings.HasPrefix(strings.TrimSpace(v), "{") {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(v), &obj); err != nil {
			return badRequest("metadata %s: want key:value or a JSON object: %v", clipQuery(v), err)
		}
		for k, raw := range obj {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				s = string(compactJSON(raw))
			}
			want[k] = s
		}
		return nil
	}
	k, val, ok := strings.Cut(v, ":")
	if !ok || k == "" {
		return badRequest("metadata %s: want key:value", clipQuery(v))
	}
	want[k] = val
	return nil
}

func clipQuery(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

// BroadcastResult is one device's part of a broadcast task's run.
type BroadcastResult struct {
	PropletID string          `json:"proplet_id"`
	TaskID    string          `json:"task_id"` // the task of the run on this device (GET /tasks/{id})
	State     int             `json:"state"`
	Status    string          `json:"status"`
	Results   json.RawMessage `json:"results"`
	Error     string          `json:"error,omitempty"`
}

// withRun shows a broadcast task as its last run: the run's state, and
// results an object of each device's result by proplet id.
func (v *Task) withRun(b engine.BroadcastRun) {
	st := b.State()
	v.State, v.Status, v.Attempt = st.PropellerState(), st.String(), b.Run
	if len(b.Tasks) > 0 {
		v.Results, v.Error = broadcastResults(b)
	}
}

// BroadcastResultsFrom is GET /tasks/{id}/results of a broadcast task:
// results holds each device's result by proplet id (Propeller's results,
// per device), proplets the run's task on each device, error the errors
// of the devices that failed.
func BroadcastResultsFrom(id string, b engine.BroadcastRun) Results {
	st := b.State()
	res := Results{ID: id, Results: json.RawMessage(`null`), State: st.PropellerState(), Status: st.String(), Run: b.Run,
		Proplets: make([]BroadcastResult, 0, len(b.Tasks))}
	if len(b.Tasks) > 0 {
		res.Results, res.Error = broadcastResults(b)
	}
	for _, t := range b.Tasks {
		res.Proplets = append(res.Proplets, BroadcastResult{PropletID: t.TargetDevice, TaskID: t.ID,
			State: t.State.PropellerState(), Status: t.State.String(), Results: orNull(t.Result), Error: t.Error})
	}
	return res
}

func broadcastResults(b engine.BroadcastRun) (json.RawMessage, string) {
	byDevice := make(map[string]json.RawMessage, len(b.Tasks))
	var errs []string
	for _, t := range b.Tasks {
		byDevice[t.TargetDevice] = orNull(t.Result)
		if t.Error != "" && t.State.Terminal() {
			errs = append(errs, t.TargetDevice+": "+t.Error)
		}
	}
	out, _ := json.Marshal(byDevice) // keys sorted
	return out, strings.Join(errs, "; ")
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`null`)
	}
	return raw
}
