package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

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
