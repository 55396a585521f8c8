package projections_test

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
)

// recorded reads the histories of testdata/recorded.jsonl.gz (GET /events
// of a real server: simulated devices, a local proplet, tasks deleted,
// workflows with fan-out steps) and of testing/replay's golden files
// (failures, retries, stops, skipped steps), each kind's events in stream
// order.
func recorded(t *testing.T) map[events.Kind][]events.Envelope {
	t.Helper()
	byKind := map[events.Kind][]events.Envelope{}
	add := func(envs []events.Envelope) {
		for _, e := range envs {
			byKind[e.Aggregate.Kind] = append(byKind[e.Aggregate.Kind], e)
		}
	}
	f, err := os.Open("testdata/recorded.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := replay.ReadJSONL(zr)
	if err != nil {
		t.Fatal(err)
	}
	add(envs)
	// The golden files go on after the recording, in sequences of their own.
	for _, name := range []string{"task_lifecycle.jsonl", "workflows.jsonl"} {
		g, err := os.Open("../testing/replay/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		envs, err := replay.ReadJSONL(g)
		g.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range envs {
			envs[i].Seq += 1 << 20
		}
		add(envs)
	}
	return byKind
}

// models are the read models a server starts, and what they show.
type models struct {
	tasks     *projections.Tasks
	devices   *projections.Devices
	workflows *projections.Workflows
}

func newModels() models {
	return models{projections.NewTasks(codec), projections.NewDevices(codec), projections.NewWorkflows(codec)}
}

func (m models) of(k events.Kind) projections.Snapshotter {
	switch k {
	case events.KindTask:
		return m.tasks
	case events.KindDevice:
		return m.devices
	}
	return m.workflows
}

// view is everything the models answer, as JSON: lists, counts, indexes,
// placement turns and the plans of running workflows (which read the
// index and graph a workflow derives from its spec).
func (m models) view(t *testing.T) string {
	t.Helper()
	m.devices.ObservePlaceable(m.tasks.SetPlaceable) // as service.New does, after the catch-up
	var places []string
	for turn := range uint64(8) {
		places = append(places, m.tasks.PlaceAt("", turn))
	}
	for range 3 {
		places = append(places, m.tasks.Place(""))
	}
	wfs, n := m.workflows.List(0, 0)
	var plans []engine.Plan
	for _, id := range m.workflows.Running() {
		w, _ := m.workflows.Get(id)
		plans = append(plans, engine.Next(w))
	}
	b, err := json.MarshalIndent(map[string]any{
		"tasks": m.tasks.All(), "task_counts": m.tasks.Counts(), "load": m.tasks.Load(), "active": m.tasks.Active(), "places": places,
		"devices": m.devices.List(), "device_counts": m.devices.Counts(), "up": m.devices.Up(),
		"workflows": wfs, "workflow_total": n, "running": m.workflows.Running(), "plans": plans,
		"seqs": []uint64{m.tasks.LastSeq(), m.devices.LastSeq(), m.workflows.LastSeq()},
	}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fold(t *testing.T, p projections.Projection, envs []events.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := p.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshot_SameAsFullReplay starts each read model from a snapshot
// taken after every one of many prefixes of a recorded history, folds the
// rest, and wants what the models answer to equal a full replay's.
func TestSnapshot_SameAsFullReplay(t *testing.T) {
	hist := recorded(t)
	kinds := []events.Kind{events.KindTask, events.KindDevice, events.KindWorkflow}
	full := newModels()
	for _, k := range kinds {
		fold(t, full.of(k), hist[k])
	}
	want := full.view(t)
	for _, k := range kinds {
		envs := hist[k]
		if len(envs) < 30 {
			t.Fatalf("%s: only %d events recorded", k, len(envs))
		}
		for _, cut := range cuts(len(envs)) {
			ref, m := newModels(), newModels() // ref: folded up to the cut; m: from ref's snapshot
			for _, other := range kinds {
				if other != k {
					fold(t, ref.of(other), hist[other])
					fold(t, m.of(other), hist[other])
				}
			}
			fold(t, ref.of(k), envs[:cut])
			seq, data, err := ref.of(k).Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if err := m.of(k).Restore(seq, data); err != nil {
				t.Fatalf("%s cut %d: %v", k, cut, err)
			}
			if got, at := m.view(t), ref.view(t); got != at {
				t.Fatalf("%s: restored from a snapshot after %d of %d events: state differs from the one snapshotted\n%s", k, cut, len(envs), firstDiff(got, at))
			}
			fold(t, m.of(k), envs[cut:]) // Apply skips what the snapshot holds
			if got := m.view(t); got != want {
				t.Fatalf("%s: snapshot after %d of %d events, then the rest: state differs from a full replay\n%s", k, cut, len(envs), firstDiff(got, want))
			}
		}
	}
}

// cuts are the prefixes to snapshot after: none, the first events, then
// spread to the whole history.
func cuts(n int) []int {
	out := []int{0, 1, 2}
	for i := 1; i <= 6; i++ {
		out = append(out, n*i/6-i%2) // the middle of a batch, too
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func firstDiff(got, want string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			lo, hi := max(i-300, 0), min(i+300, len(got), len(want))
			return "got:  ..." + got[lo:hi] + "\nwant: ..." + want[lo:min(i+300, len(want))]
		}
	}
	return "lengths differ"
}

// TestSnapshots_SaveRestore runs Save and Restore against JetStream: a
// snapshot is used when it fits, and ignored (a full replay) when the
// version differs, when the stream lost a message, and when there is
// none; nothing is saved while the kind has a quarantined aggregate.
func TestSnapshots_SaveRestore(t *testing.T) {
	ctx := testCtx(t)
	nc, js := natstest.Connect(t, natstest.Start(t))
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := events.NewSnapshots(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	r0 := newRun(t, store)

	// A model started on a stream never written to is saved once it is.
	devs := projections.NewDevices(codec)
	ds := projections.NewSnapshots(snaps, store, nil)
	if _, err := ds.Restore(ctx, devs); err != nil {
		t.Fatal(err)
	}
	r0.device(engine.Announce{ID: "d1"})
	if err := projections.Catchup(ctx, store, devs); err != nil {
		t.Fatal(err)
	}
	if ok, err := ds.Save(ctx, devs); !ok || err != nil {
		t.Fatalf("save after the first event: %v %v", ok, err)
	}

	for _, id := range []string{"t1", "t2", "t3"} {
		r0.task(engine.CreateTask{ID: id, Spec: events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1"}})
	}
	start := func(q *events.Quarantine) (*projections.Tasks, *projections.Snapshots, projections.Restored) {
		t.Helper()
		p := projections.NewTasks(codec, projections.WithQuarantine(q))
		s := projections.NewSnapshots(snaps, store, q)
		r, err := s.Restore(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := projections.Catchup(ctx, store, p); err != nil {
			t.Fatal(err)
		}
		return p, s, r
	}

	p, s, r := start(nil)
	if r.Seq != 0 || r.Reason != "no snapshot" {
		t.Fatalf("first start: %+v", r)
	}
	if ok, err := s.Save(ctx, p); !ok || err != nil {
		t.Fatalf("save: %v %v", ok, err)
	}
	if ok, err := s.Save(ctx, p); ok || err != nil {
		t.Fatalf("save with nothing new: wrote %v, %v", ok, err)
	}
	r0.task(engine.ScheduleTask{ID: "t1", Device: "d1"})

	p2, _, r := start(nil)
	if r.Seq != 3 || r.Reason != "" {
		t.Fatalf("restart: %+v", r)
	}
	if got, _ := p2.Get("t1"); got.State != engine.TaskScheduled || p2.LastSeq() != 4 || len(p2.All()) != 3 {
		t.Fatalf("restored and caught up: %+v, seq %d, %d tasks", got, p2.LastSeq(), len(p2.All()))
	}

	snap, _, err := snaps.Get(ctx, events.KindTask)
	if err != nil {
		t.Fatal(err)
	}
	snap.Version = "tasks/0/old"
	if err := snaps.Put(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if _, _, r := start(nil); r.Seq != 0 || r.Reason == "" {
		t.Fatalf("another version was read: %+v", r)
	}

	p, s, _ = start(nil)
	if ok, err := s.Save(ctx, p); !ok || err != nil {
		t.Fatalf("save: %v %v", ok, err)
	}
	st, err := js.Stream(ctx, events.KindTask.Stream())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 2); err != nil { // t2's creation
		t.Fatal(err)
	}
	p, s, r = start(nil)
	if r.Seq != 0 || r.Reason != "the stream changed since (deleted, purged or a message removed)" {
		t.Fatalf("restart after a removal: %+v", r)
	}
	if _, ok := p.Get("t2"); ok {
		t.Fatal("t2 from the snapshot, though its event was removed")
	}
	if ok, err := s.Save(ctx, p); !ok || err != nil {
		t.Fatalf("save after the full replay: %v %v", ok, err)
	}

	q := events.NewQuarantine()
	q.Add(events.QuarantinedEnvelope(events.Envelope{Aggregate: events.TaskAggregate("t3"), Seq: 3}, errors.New("bad")))
	r0.task(engine.ScheduleTask{ID: "t3", Device: "d1"})
	p, s, _ = start(q)
	if ok, err := s.Save(ctx, p); ok || err != nil {
		t.Fatalf("saved with a quarantined task: %v %v", ok, err)
	}
}

// TestSnapshot_WorkflowDecodes checks that a workflow read back from JSON
// and reindexed decides as the folded one.
func TestSnapshot_WorkflowDecodes(t *testing.T) {
	spec := replay.FanOutSpec(5)
	evs := replay.DriveWorkflow(t, "w", spec, t0)
	var w engine.Workflow
	for i, ev := range evs[:3] {
		w = w.Apply(events.Envelope{Aggregate: events.WorkflowAggregate("w"), Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second)}, ev)
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var back engine.Workflow
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back = back.Reindexed()
	want, _ := json.Marshal(engine.Next(w))
	got, _ := json.Marshal(engine.Next(back))
	if string(got) != string(want) || len(engine.Next(w).Start) == 0 {
		t.Fatalf("plan after JSON:\n%s\nwant\n%s", got, want)
	}
	for _, s := range spec.Steps {
		if _, ok := back.Step(s.Name); !ok {
			t.Fatalf("step %s not found after JSON", s.Name)
		}
	}
}
