package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

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
