package service_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
)

var codec = events.DefaultCodec()

// checkErr fails unless err matches want (nil wants no error).
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newHandler is a deterministic handler: a clock that ticks a second per
// reading and counting ids with the given prefix.
func newHandler(store events.Store, prefix string) *service.Handler {
	return service.NewHandler(store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs(prefix))
}

func newJetStream(t testing.TB) *events.JetStream {
	t.Helper()
	nc, _ := natstest.Connect(t, natstest.Start(t))
	st, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func load(t testing.TB, store events.Store, agg events.Aggregate) []events.Envelope {
	t.Helper()
	envs, err := store.Load(testCtx(t), agg)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func types(envs []events.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Type
	}
	return out
}

// foldTask folds agg's stored events.
func foldTask(t testing.TB, store events.Store, id string) engine.Task {
	t.Helper()
	s, err := engine.Fold(codec, engine.Task{}, load(t, store, events.TaskAggregate(id)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func foldDevice(t testing.TB, store events.Store, id string) engine.Device {
	t.Helper()
	s, err := engine.Fold(codec, engine.Device{}, load(t, store, events.DeviceAggregate(id)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustTask runs cmd and fails the test on an error.
func mustTask(t testing.TB, h *service.Handler, cmd engine.TaskCommand) engine.Task {
	t.Helper()
	s, err := h.Task(testCtx(t), cmd)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	return s
}

func mustDevice(t testing.TB, h *service.Handler, cmd engine.DeviceCommand) engine.Device {
	t.Helper()
	s, err := h.Device(testCtx(t), cmd)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	return s
}

func sameState[S any](t testing.TB, what string, got, want S) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// Fixtures.
var (
	dA          = "sha256:" + strings.Repeat("a", 64)
	dB          = "sha256:" + strings.Repeat("b", 64)
	digest      = "sha256:" + strings.Repeat("d", 64)
	created     = events.TaskCreated{Name: "add", Module: digest, ModuleSize: 42, Inputs: []string{"1", "2"}}
	createdBare = events.TaskCreated{Name: "add"}
	meta        = events.DeviceMetadata{Hostname: "pi-1", OS: "linux", CPUArch: "arm64", Tags: []string{"lab"}, TotalMemoryBytes: 1 << 30}
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
