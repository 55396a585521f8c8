package events_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// apiCalls counts the requests to one JetStream API subject that reach
// the server, by listening on it beside the server.
func apiCalls(t *testing.T, nc *nats.Conn, subject string) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	sub, err := nc.Subscribe(subject, func(*nats.Msg) { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// requests is what apiCalls counted once want have arrived (or 5 s have
// passed) and a flush later: its handler runs apart from the connection's
// reader, so a flush alone does not mean it has counted.
func requests(t *testing.T, nc *nats.Conn, n *atomic.Int64, want int64) int64 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return n.Load()
}

// TestJetStream_LoadLatest: LoadLatest asks the stream leader for the
// aggregate's last sequence (STREAM.MSG.GET, which only the leader
// answers), keeps a direct load that reaches it, and reads from the
// leader what a direct load that lags misses. The replica that lags is
// played by a direct load that drops the last events of a real one
// (fault injection: a lagging replica cannot be provoked on one server).
func TestJetStream_LoadLatest(t *testing.T) {
	r := newJSRig(t)
	seed := r.store(t)
	appendN(t, seed, "other", 2)
	want := appendN(t, seed, "a", 5)
	appendN(t, seed, "other", 2)
	errReplica := errors.New("replica gone")
	tests := []struct {
		name        string
		direct      func(evs []events.Envelope, err error) ([]events.Envelope, error)
		wantLeader  int64  // STREAM.MSG.GET requests
		wantLagging uint64 // LaggingReads
	}{
		{"direct load is current", nil, 1, 0},
		{"direct load lags by 3 events", func(evs []events.Envelope, err error) ([]events.Envelope, error) { return evs[:2], err }, 1 + 5, 1},
		{"direct load finds nothing", func([]events.Envelope, error) ([]events.Envelope, error) { return nil, nil }, 1 + 5, 1},
		{"direct load fails", func([]events.Envelope, error) ([]events.Envelope, error) { return nil, errReplica }, 1 + 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := r.store(t)
			if tt.direct != nil {
				events.SetDirectLoad(s, func(ctx context.Context, agg events.Aggregate) ([]events.Envelope, error) {
					return tt.direct(s.Load(ctx, agg))
				})
			}
			leader := apiCalls(t, r.nc, "$JS.API.STREAM.MSG.GET.TASKS")
			got, err := s.LoadLatest(testCtx(t), events.TaskAggregate("a"))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(loadSeqs(got)) != fmt.Sprint(want) {
				t.Fatalf("LoadLatest = %v, want %v", loadSeqs(got), want)
			}
			full, _ := s.Load(testCtx(t), events.TaskAggregate("a"))
			if !reflect.DeepEqual(got, full) {
				t.Errorf("LoadLatest = %+v, want what Load reads on one server: %+v", got, full)
			}
			if n := requests(t, r.nc, leader, tt.wantLeader); n != tt.wantLeader {
				t.Errorf("%d requests to the stream leader, want %d", n, tt.wantLeader)
			}
			if n := s.LaggingReads(); n != tt.wantLagging {
				t.Errorf("LaggingReads = %d, want %d", n, tt.wantLagging)
			}
		})
	}
	t.Run("unknown aggregate: one request", func(t *testing.T) {
		s := r.store(t)
		leader := apiCalls(t, r.nc, "$JS.API.STREAM.MSG.GET.TASKS")
		if got, err := s.LoadLatest(testCtx(t), events.TaskAggregate("never")); got != nil || err != nil {
			t.Fatalf("LoadLatest = %v, %v; want nil, nil", got, err)
		}
		if n := requests(t, r.nc, leader, 1); n != 1 {
			t.Errorf("%d requests to the stream leader, want 1", n)
		}
	})
}

// TestJetStream_LoadLatestNoLeader: with no server to answer, LoadLatest
// fails (it never returns what a replica says unconfirmed), within the
// caller's deadline.
func TestJetStream_LoadLatestNoLeader(t *testing.T) {
	srv := natstest.Start(t)
	nc, _ := natstest.Connect(t, srv)
	s, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "a", 2)
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	got, err := s.LoadLatest(ctx, events.TaskAggregate("a"))
	if err == nil {
		t.Fatalf("LoadLatest without a server = %d events, nil; want an error", len(got))
	}
}
