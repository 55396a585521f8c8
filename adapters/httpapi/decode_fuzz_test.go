package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
)

// The decoders of the API's JSON bodies (issue 12): whatever bytes a
// client sends, decoding and the checks done before the engine is asked
// end in a client's error (4xx), never a panic nor a 500.

func seedSpecs(f *testing.F, extra ...string) {
	for _, s := range append([]string{
		`{"name":"add","inputs":[1,"2",true],"env":{"A":"b"},"retry":{"max_attempts":3}}`,
		`{"name":"add","file":"AGFzbQEAAAA=","proplet_id":"p:1","timeout_ms":-1,"memory_mib":4096}`,
		`{"name":"w","steps":[{"name":"a","module":"add:1","function":"add","depends_on":["b"]},{"name":"b","module":"sha256:00","retry":{"max_attempts":2,"initial_backoff":"1s"}}],"cron":"* * * * *"}`,
		`{"tasks":[{"id":"a","name":"add","image_url":"add:1","depends_on":["b"]},{"id":"b","name":"x","file":"AGFzbQEAAAA=","priority":101}]}`,
		`{"name":"j","execution_mode":"sequential","tasks":[{"name":"a","schedule":"x"}]}`,
		`{}`, `[]`, `null`, `{"name":"a"} {}`, `{"name":1}`, `{"steps":null}`,
	}, extra...) {
		f.Add([]byte(s))
	}
}

// clientError fails unless err maps to a 4xx status.
func clientError(t *testing.T, in []byte, err error) {
	t.Helper()
	if status := statusOf(err); status < 400 || status > 499 {
		t.Fatalf("%q: %v answers %d, want 4xx", in, err, status)
	}
}

func FuzzDecodeTaskRequest(f *testing.F) {
	seedSpecs(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var req TaskRequest
		err := decodeJSON(bytes.NewReader(in), &req)
		if err == nil {
			_, err = req.spec()
		}
		if err != nil {
			clientError(t, in, err)
		}
	})
}

func FuzzDecodeWorkflowSpec(f *testing.F) {
	seedSpecs(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var probe workflowBody
		if err := json.NewDecoder(bytes.NewReader(in)).Decode(&probe); err != nil {
			clientError(t, in, jsonErr(err))
			return
		}
		var spec engine.WorkflowSpec
		err := decodeJSON(bytes.NewReader(in), &spec)
		if err == nil {
			err = spec.Validate()
		}
		if err != nil {
			clientError(t, in, err)
		}
	})
}

func FuzzDecodePropellerWorkflow(f *testing.F) {
	seedSpecs(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var req PropellerWorkflowRequest
		err := decodeJSON(bytes.NewReader(in), &req)
		if err == nil {
			err = propellerSpec(propellerWorkflowName, engine.ModeDAG, req.Tasks)
		}
		if err != nil {
			clientError(t, in, err)
		}
	})
}

func FuzzDecodeJob(f *testing.F) {
	seedSpecs(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var req JobRequest
		err := decodeJSON(bytes.NewReader(in), &req)
		if err == nil {
			mode, ok := executionModes[req.ExecutionMode]
			if !ok {
				return // refused with 400 by createJob
			}
			err = propellerSpec(req.Name, mode, req.Tasks)
		}
		if err != nil {
			clientError(t, in, err)
		}
	})
}

// propellerSpec converts and validates Propeller's tasks as
// createPropeller does before it stores anything.
func propellerSpec(name string, mode engine.WorkflowMode, tasks []PropellerTaskRequest) error {
	if name == "" {
		name = propellerJobName
	}
	spec, _, err := PropellerSpec(name, mode, tasks)
	if err != nil {
		return err
	}
	return spec.Validate()
}

// A body larger than the limit is 413, as the fuzzers above cannot show.
func TestDecodeJSON_TooLarge(t *testing.T) {
	body := http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader([]byte(`{"name":"`+strings.Repeat("n", 100)+`"}`))), 10)
	err := decodeJSON(body, &TaskRequest{})
	if statusOf(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("%v answers %d, want 413", err, statusOf(err))
	}
}
