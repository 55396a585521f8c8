package mqtt_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// fakeNotifier is the Acks port: it records what it was given, and fails
// with err when that is set.
type fakeNotifier struct {
	err error

	mu   sync.Mutex
	sent []sentAck
}

type sentAck struct {
	suffix string
	ack    wire.ResultAck
}

var _ mqtt.Notifier = (*fakeNotifier)(nil)

func (n *fakeNotifier) Notify(_ context.Context, suffix string, v any) error {
	if n.err != nil {
		return n.err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, sentAck{suffix, v.(wire.ResultAck)})
	return nil
}

func (n *fakeNotifier) acks() []sentAck {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sent)
}

func TestInbound_ResultAck(t *testing.T) {
	devices := fakeDevices{
		"own":    {ID: "own", OwnTopics: true, Accepts: true},
		"older":  {ID: "older", OwnTopics: true}, // on its own topics, from before accepts
		"legacy": {ID: "legacy"},
	}
	result := func(device string) string {
		return `{"task_id":"t1","proplet_id":"` + device + `","results":1,"attempt":2}`
	}
	own := func(device string) string { return edgeTopics.Topic(wire.OwnTopic(wire.SuffixResults, device)) }
	acked := []sentAck{{wire.OwnTopic(wire.SuffixResultAck, "own"), wire.ResultAck{TaskID: "t1", Attempt: 2}}}
	tests := []struct {
		name    string
		topic   string
		payload string
		cmdErr  error
		sendErr error
		want    []sentAck
		stats   mqtt.Snapshot
	}{
		{"recorded", own("own"), result("own"), nil, nil, acked, mqtt.Snapshot{ResultAcks: 1}},
		{"a duplicate (no-op) is acked too", own("own"), result("own"), nil, nil, acked, mqtt.Snapshot{ResultAcks: 1}},
		{"stale", own("own"), result("own"), domain.ErrStale, nil, acked, mqtt.Snapshot{ResultAcks: 1}},
		{"unknown task", own("own"), result("own"), domain.ErrNotFound, nil, acked, mqtt.Snapshot{ResultAcks: 1}},
		{"quarantined task", own("own"), result("own"), domain.ErrQuarantined, nil, acked, mqtt.Snapshot{ResultAcks: 1}},
		{"recording failed: retried, not acked", own("own"), result("own"), errTransient, nil, nil, mqtt.Snapshot{}},
		{"invalid: not acked", own("own"), result("own"), domain.ErrInvalid, nil, nil, mqtt.Snapshot{}},
		{"no attempt", own("own"), `{"task_id":"t1","proplet_id":"own","results":1}`, nil, nil, nil, mqtt.Snapshot{}},
		{"shared topic", edgeTopics.Topic(wire.SuffixResults), result("own"), nil, nil, nil, mqtt.Snapshot{}},
		{"legacy device", own("legacy"), result("legacy"), nil, nil, nil, mqtt.Snapshot{}},
		{"own topics without accepts", own("older"), result("older"), nil, nil, nil, mqtt.Snapshot{}},
		{"unknown device", own("stranger"), result("stranger"), nil, nil, nil, mqtt.Snapshot{}},
		{"ack not sent: counted", own("own"), result("own"), nil, errTransient, nil, mqtt.Snapshot{ResultAckErrors: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			cmds := &fakeCommands{rec: rec, err: tt.cmdErr}
			acks := &fakeNotifier{err: tt.sendErr}
			in := newInbound(t, newFakeJetStream(), mqtt.InboundPorts{Commands: cmds, Seer: fakeSeer{rec}, Devices: devices, Acks: acks}, mqtt.InboundConfig{})
			err := in.Handle(context.Background(), tt.topic, []byte(tt.payload))
			if !errors.Is(err, tt.cmdErr) {
				t.Fatalf("Handle = %v, want %v", err, tt.cmdErr)
			}
			if got := acks.acks(); !slices.Equal(got, tt.want) {
				t.Errorf("acks %+v, want %+v", got, tt.want)
			}
			if got := in.Stats(); got != tt.stats {
				t.Errorf("stats %+v, want %+v", got, tt.stats)
			}
			if calls, _ := rec.snapshot(); len(calls) != 1 {
				t.Errorf("commands %s, want one RecordResult", formatCalls(calls))
			} else if _, ok := calls[0].(engine.RecordResult); !ok {
				t.Errorf("command %s, want a RecordResult", formatCalls(calls))
			}
		})
	}
}
