package app_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/events"
)

// TestApp_RestartFromSnapshot stops a server, which writes its read
// models' snapshots, and starts it again on the same data directory: the
// new process starts from them (the snapshot holds every event before the
// restart), shows every task, and folds what comes after.
func TestApp_RestartFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, 0)
	a := startApp(t, cfg)
	ctx := context.Background()
	var ids []string
	for range 5 {
		task, err := a.Service().CreateTask(ctx, events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	last := a.Tasks().LastSeq()
	a.Close() // writes the snapshots

	b := startApp(t, cfg)
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, events.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := obj.GetInfo(ctx, string(events.KindTask))
	if err != nil {
		t.Fatalf("no tasks snapshot after a shutdown: %v", err)
	}
	if seq, _ := strconv.ParseUint(info.Metadata["seq"], 10, 64); seq != last {
		t.Fatalf("snapshot at seq %d, want %d (every event before the shutdown)", seq, last)
	}
	for _, id := range ids {
		if _, ok := b.Tasks().Get(id); !ok {
			t.Fatalf("task %s missing after a start from the snapshot", id)
		}
	}
	task, err := b.Service().CreateTask(ctx, events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Tasks().Get(task.ID); got.ID != task.ID || len(b.Tasks().All()) != 6 || b.Tasks().LastSeq() != last+1 {
		t.Fatalf("after the restart: %d tasks, seq %d (want 6, %d)", len(b.Tasks().All()), b.Tasks().LastSeq(), last+1)
	}
}
