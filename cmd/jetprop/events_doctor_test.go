package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

func TestCLI_EventsDoctor(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	if out := jetprop(ctx, vars, "", "events", "doctor").ok(t); out != "no quarantined aggregate, no damaged event stream\n" {
		t.Fatalf("healthy server:\n%s", out)
	}

	agg := events.TaskAggregate("t1")
	bad := events.Envelope{ID: "bad-1", Type: "task.teleported", Aggregate: agg, Time: time.Now(), Version: 1, Data: json.RawMessage("{\"to\":\"mars\"}\n")}
	seq, err := s.Store.Append(ctx, agg, 0, bad)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if s.Quarantine.Len() == 0 {
			return errors.New("not quarantined yet")
		}
		return nil
	})
	s.Quarantine.AddStream(events.StreamProblem{StreamState: events.StreamState{Stream: "DEVICES", FirstSeq: 5, LastSeq: 4}, Problem: events.ProblemPurged, Detail: "every event was purged"})

	res := jetprop(ctx, vars, "", "events", "doctor")
	res.fails(t, exitError, "jetprop: 1 quarantined aggregate, 1 damaged event stream")
	for _, want := range []string{
		"1 quarantined aggregate (commands refused, last good state shown):\n",
		fmt.Sprintf("\ntask/t1  TASKS seq %d\n", seq),
		"  error    events: decode task.teleported bad-1",
		"  subject  jp.evt.task.t1\n",
		"  header   Jp-Type: task.teleported\n",
		"  data     {\"to\":\"mars\"}\\n (14 bytes)\n",
		"\n1 damaged event stream (found at start):\n",
		"\nDEVICES purged: first seq 5, last seq 4, 0 messages\n  every event was purged\n",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("no %q in\n%s", want, res.stdout)
		}
	}

	res = jetprop(ctx, vars, "", "events", "doctor", "-o", "json")
	res.fails(t, exitError, "1 quarantined aggregate")
	var r httpapi.QuarantineReport
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Quarantined) != 1 || r.Quarantined[0].Seq != seq || r.Quarantined[0].Aggregate != agg || len(r.Streams) != 1 {
		t.Fatalf("JSON report %+v", r)
	}
}
