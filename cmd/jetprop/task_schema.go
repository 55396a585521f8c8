package main

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// schemaFlags are task create's flags for Propeller's task fields
// (httpapi.TaskSchemaRequest).
type schemaFlags struct {
	metadata  map[string]string
	priority  int
	broadcast bool
	schedule  string
	timezone  string
	recurring bool
	runIf     string
}

func (f *schemaFlags) declare(fs *flagSet) {
	fs.Pairs(&f.metadata, "metadata", "label the task with `KEY=VALUE` (repeatable; a string value); 'task list --metadata' filters on it")
	fs.Int(&f.priority, "priority", 0, "the task's `priority`, 0 to 100 (0: the default, 50): firings of cron tasks waiting for a proplet start highest first")
	fs.Bool(&f.broadcast, "broadcast", false, "run the task once on every alive proplet when it starts (not with --proplet); results per proplet")
	fs.String(&f.schedule, "schedule", "", "start the task at the times of this cron `expression` (5 fields, or 6 with seconds first)")
	fs.String(&f.timezone, "timezone", "", "the IANA time `zone` of --schedule (default UTC)")
	fs.Bool(&f.recurring, "recurring", false, "with --schedule: start the task at every time, not only at the next one")
	fs.String(&f.runIf, "run-if", "", "Propeller's run_if, `success` or failure (stored; a task of its own has no dependencies)")
}

// apply sets the request's schema fields.
func (f *schemaFlags) apply(req *httpapi.TaskRequest) {
	for _, k := range slices.Sorted(maps.Keys(f.metadata)) {
		if req.Metadata == nil {
			req.Metadata = map[string]json.RawMessage{}
		}
		v, _ := json.Marshal(f.metadata[k])
		req.Metadata[k] = v
	}
	req.Priority, req.Broadcast, req.RunIf = f.priority, f.broadcast, f.runIf
	req.Schedule, req.Timezone, req.IsRecurring = f.schedule, f.timezone, f.recurring
}
