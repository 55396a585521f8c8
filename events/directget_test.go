package events

import (
	"errors"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func reply(status string, kv ...string) *nats.Msg {
	m := nats.NewMsg("_INBOX.x.1")
	if status != "" {
		m.Header.Set(hdrStatus, status)
	}
	for i := 0; i < len(kv); i += 2 {
		m.Header.Set(kv[i], kv[i+1])
	}
	return m
}

func stored(seq, prev string) *nats.Msg {
	m := reply("", "Nats-Stream", "TASKS", "Nats-Subject", "jp.evt.task.a", "Nats-Sequence", seq,
		"Nats-Time-Stamp", "2026-12-01T00:00:00Z", hdrNumPending, "0", hdrLastSeq, prev)
	m.Data = []byte("{}")
	return m
}

func TestBatch_Add(t *testing.T) {
	old := reply("", "Nats-Stream", "TASKS", "Nats-Subject", "jp.evt.task.a", "Nats-Sequence", "4")
	tests := []struct {
		name        string
		replies     []*nats.Msg
		wantErr     error
		wantMsgs    int
		wantFound   bool
		wantPending uint64
	}{
		{"two and the end", []*nats.Msg{stored("4", "0"), stored("9", "4"), reply(statusEOB, hdrNumPending, "3", hdrLastSeq, "9")}, nil, 2, true, 3},
		{"none", []*nats.Msg{reply(statusNoMsg, hdrDesc, "Message Not Found")}, nil, 0, false, 0},
		{"a reply lost", []*nats.Msg{stored("4", "0"), stored("9", "5")}, errBatchGap, 1, true, 0},
		{"the last reply lost", []*nats.Msg{stored("4", "0"), reply(statusEOB, hdrNumPending, "0", hdrLastSeq, "9")}, errBatchGap, 1, true, 0},
		{"not found after messages", []*nats.Msg{stored("4", "0"), reply(statusNoMsg)}, errBatchGap, 1, true, 0},
		{"no stream", []*nats.Msg{reply(statusNoReply)}, nats.ErrNoResponders, 0, true, 0},
		{"a server without batches", []*nats.Msg{old}, errNoBatch, 0, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := batch{found: true}
			var err error
			for i, m := range tc.replies {
				var done bool
				done, err = b.add(m)
				if done != (i == len(tc.replies)-1) {
					t.Fatalf("reply %d: done = %t", i, done)
				}
			}
			if !errors.Is(err, tc.wantErr) || len(b.msgs) != tc.wantMsgs || b.found != tc.wantFound || b.pending != tc.wantPending {
				t.Errorf("got %d msgs, found %t, pending %d, %v; want %d, %t, %d, %v",
					len(b.msgs), b.found, b.pending, err, tc.wantMsgs, tc.wantFound, tc.wantPending, tc.wantErr)
			}
		})
	}
	t.Run("headers of a batch only are dropped", func(t *testing.T) {
		var b batch
		if _, err := b.add(stored("4", "0")); err != nil {
			t.Fatal(err)
		}
		if h := b.msgs[0].header; h.Get(hdrNumPending) != "" || h.Get(hdrLastSeq) != "" || h.Get("Nats-Sequence") != "4" {
			t.Errorf("headers %v", h)
		}
	})
}

func TestAPIPrefix(t *testing.T) {
	tests := []struct {
		name           string
		prefix, domain string
		want           string
	}{
		{"default", "", "", "$JS.API."},
		{"prefix", "$JS.DEV.API", "", "$JS.DEV.API."},
		{"prefix with dot", "$JS.DEV.API.", "", "$JS.DEV.API."},
		{"domain", "", "hub", "$JS.hub.API."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiPrefix(jetstream.JetStreamOptions{APIPrefix: tc.prefix, Domain: tc.domain}); got != tc.want {
				t.Errorf("apiPrefix = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzBatch_Add feeds batch.add replies with any header values: it must
// end with an error or accept messages whose sequences chain, never panic.
func FuzzBatch_Add(f *testing.F) {
	f.Add("4", "0", "204", "3", "4")
	f.Add("", "", "404", "", "")
	f.Add("x", "-1", "204", "18446744073709551616", "")
	f.Fuzz(func(t *testing.T, seq, prev, status, pending, last string) {
		var b batch
		if done, err := b.add(stored(seq, prev)); done && err == nil {
			t.Fatalf("a stored message (seq %q) ended the batch without an error", seq)
		}
		_, err := b.add(reply(status, hdrNumPending, pending, hdrLastSeq, last))
		if err == nil && len(b.msgs) == 1 && status == statusEOB && last != seq {
			if l, _ := strconv.ParseUint(last, 10, 64); l != b.last {
				t.Fatalf("end of batch at %q accepted after message %d", last, b.last)
			}
		}
	})
}
