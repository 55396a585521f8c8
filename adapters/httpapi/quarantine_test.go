package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

// quarantineTask stores an event of an unknown type after task id's last
// and waits until the read model has quarantined the task.
func quarantineTask(t *testing.T, s *apitest.Stack, id string) uint64 {
	t.Helper()
	agg := events.TaskAggregate(id)
	v, err := s.Store.Version(t.Context(), agg)
	if err != nil {
		t.Fatal(err)
	}
	bad := events.Envelope{ID: "bad-" + id, Type: "task.teleported", Aggregate: agg, Time: time.Now(), Version: 1, Data: json.RawMessage(`{"to":"mars"}`)}
	seq, err := s.Store.Append(t.Context(), agg, v, bad)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if _, ok := s.Quarantine.Get(agg); !ok {
			return errors.New("the task is not quarantined yet")
		}
		return nil
	})
	return seq
}

func TestAPI_Quarantine(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	task := decode[httpapi.Task](t, mustCall(t, http.MethodPost, s.URL+"/tasks", `{"name":"add","image_url":"docker.io/acme/add:1"}`, http.StatusCreated))
	seq := quarantineTask(t, s, task.ID)

	t.Run("health is degraded, still 200", func(t *testing.T) {
		h := decode[httpapi.Health](t, mustCall(t, http.MethodGet, s.URL+"/health", "", http.StatusOK))
		if h.Status != httpapi.HealthDegraded || h.Quarantined != 1 || h.Service != "jetprop" || h.Version == "" {
			t.Fatalf("health %+v, want degraded with 1 quarantined", h)
		}
	})
	t.Run("a command is refused with 409 naming the message", func(t *testing.T) {
		e := decode[httpapi.Error](t, mustCall(t, http.MethodPost, s.URL+"/tasks/"+task.ID+"/start", "", http.StatusConflict))
		for _, want := range []string{"task/" + task.ID + " is quarantined", "TASKS sequence", "task.teleported", "jetprop events doctor", "GET /events/quarantine"} {
			if !strings.Contains(e.Error, want) {
				t.Errorf("error %q does not say %q", e.Error, want)
			}
		}
		if e.Quarantined == nil || e.Quarantined.Seq != seq || e.Quarantined.Aggregate != events.TaskAggregate(task.ID) {
			t.Fatalf("error names %+v, want the message at %d", e.Quarantined, seq)
		}
	})
	t.Run("the task shows its last good state, marked", func(t *testing.T) {
		got := decode[httpapi.Task](t, mustCall(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", http.StatusOK))
		if got.Status != "pending" || got.Quarantined == nil || got.Quarantined.Seq != seq {
			t.Fatalf("task %s, quarantined %+v", got.Status, got.Quarantined)
		}
		list := decode[httpapi.TaskList](t, mustCall(t, http.MethodGet, s.URL+"/tasks", "", http.StatusOK))
		if len(list.Tasks) != 1 || list.Tasks[0].Quarantined == nil {
			t.Fatalf("list %+v, want the task marked", list.Tasks)
		}
	})
	t.Run("the rest is served", func(t *testing.T) {
		other := decode[httpapi.Task](t, mustCall(t, http.MethodPost, s.URL+"/tasks", `{"name":"add","image_url":"docker.io/acme/add:1"}`, http.StatusCreated))
		started := decode[httpapi.Task](t, mustCall(t, http.MethodPost, s.URL+"/tasks/"+other.ID+"/start", "", http.StatusOK))
		if started.Status != "scheduled" || started.Quarantined != nil {
			t.Fatalf("other task %s, quarantined %+v", started.Status, started.Quarantined)
		}
	})
	t.Run("the quarantine is listed", func(t *testing.T) {
		r, err := client.New(s.URL, nil).Quarantine(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Quarantined) != 1 || r.Problems() != 1 || r.Quarantined[0].Seq != seq ||
			r.Quarantined[0].Headers[events.HeaderType][0] != "task.teleported" || r.Quarantined[0].Data != `{"to":"mars"}` {
			t.Fatalf("report %+v", r)
		}
	})
}

func TestAPI_QuarantineEmpty(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	body := mustCall(t, http.MethodGet, s.URL+"/events/quarantine", "", http.StatusOK)
	if want := `{"quarantined":[],"streams":[]}` + "\n"; string(body) != want {
		t.Fatalf("report %s, want %s", body, want)
	}
}

// A task that has no readable event at all is not "not found": the
// answer says what stops it.
func TestAPI_QuarantineWithoutGoodState(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	seq := quarantineTask(t, s, "ghost")
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/tasks/ghost"}, {http.MethodPost, "/tasks/ghost/start"}, {http.MethodDelete, "/tasks/ghost"},
	} {
		e := decode[httpapi.Error](t, mustCall(t, req.method, s.URL+req.path, "", http.StatusConflict))
		if e.Quarantined == nil || e.Quarantined.Seq != seq {
			t.Fatalf("%s %s: %+v", req.method, req.path, e)
		}
	}
}

func TestAPI_HealthStreamProblems(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Quarantine.AddStream(events.StreamProblem{StreamState: events.StreamState{Stream: "TASKS", FirstSeq: 8, LastSeq: 7}, Problem: events.ProblemPurged, Detail: "gone"})
	h := decode[httpapi.Health](t, mustCall(t, http.MethodGet, s.URL+"/health", "", http.StatusOK))
	if h.Status != httpapi.HealthDegraded || h.Quarantined != 0 || len(h.Streams) != 1 || h.Streams[0].Problem != events.ProblemPurged {
		t.Fatalf("health %+v, want degraded with the purged stream", h)
	}
	r, err := client.New(s.URL, nil).Quarantine(t.Context())
	if err != nil || len(r.Streams) != 1 || r.Problems() != 1 {
		t.Fatalf("report %+v, %v", r, err)
	}
}

func mustCall(t *testing.T, method, url, body string, want int) []byte {
	t.Helper()
	status, b := callJSON(t, method, url, nilIfEmpty(body))
	wantStatus(t, status, b, want)
	return b
}

func nilIfEmpty(body string) any {
	if body == "" {
		return nil
	}
	return body
}
