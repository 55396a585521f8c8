package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestCreated_TriesAgain: created tries a create again while JetStream
// cannot do it yet, "no suitable peers" included (an engine started beside
// a cluster that had just formed exited at its first create, its meta
// leader not having heard from every node yet: nats-server's answer is
// taken from that run), and gives up at once on any other refusal.
func TestCreated_TriesAgain(t *testing.T) {
	noPeers := fmt.Errorf("events: create stream SECRETS: %w", &jetstream.APIError{
		Code: 400, ErrorCode: errNoPeersYet, Description: "no suitable peers for placement, peer offline"})
	refused := fmt.Errorf("events: create stream X: %w", &jetstream.APIError{
		Code: 400, ErrorCode: jetstream.JSErrCodeStreamNameInUse, Description: "stream name already in use"})
	for _, tt := range []struct {
		name      string
		errs      []error // the answers of the tries, then success
		wantTries int
		wantErr   error
	}{
		{name: "no peers yet, twice", errs: []error{noPeers, noPeers}, wantTries: 3},
		{name: "no answer", errs: []error{context.DeadlineExceeded}, wantTries: 2},
		{name: "refused", errs: []error{refused, noPeers}, wantTries: 1, wantErr: refused},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tries := 0
			v, err := created(context.Background(), slog.New(slog.DiscardHandler), "probe", func(context.Context) (int, error) {
				tries++
				if tries <= len(tt.errs) {
					return 0, tt.errs[tries-1]
				}
				return 42, nil
			})
			if tries != tt.wantTries || !errors.Is(err, tt.wantErr) || (err == nil && v != 42) {
				t.Fatalf("%d tries, %v, %v; want %d tries, %v", tries, v, err, tt.wantTries, tt.wantErr)
			}
		})
	}
}
