package events

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// An append is one request to the stream's leader. When the leader's
// node dies with the request in flight no answer comes, and until a new
// leader is elected (a fraction of a second on a healthy cluster) there
// is no one to ask. So one try waits at most appendTry, and a try that
// found the store unavailable (Unavailable) is made again, for appendFor
// at most and never past the caller's context.
const (
	appendTry = 2 * time.Second
	appendFor = 5 * time.Second
)

// retried runs one append step (a publish, or an atomic batch, whose last
// message has the id lastID) until it is answered. A try after the first
// that meets a conflict may have found the earlier try's own write (it
// landed, its answer was lost): the subject's last message on the leader
// tells, and when it is this step's, its sequence is the answer. Any other
// conflict is returned as it is.
func (s *JetStream) retried(ctx context.Context, agg Aggregate, lastID string, step func(context.Context) (uint64, error)) (uint64, error) {
	deadline := time.Now().Add(appendFor)
	wait := 50 * time.Millisecond
	for try := 0; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, appendTry)
		seq, err := step(tctx)
		cancel()
		switch {
		case err == nil:
			return seq, nil
		case try > 0 && errors.Is(err, ErrConflict):
			if seq, ok := s.landed(ctx, agg, lastID); ok {
				return seq, nil
			}
			return 0, err
		case !Unavailable(err) && !inProcess(err) || ctx.Err() != nil || time.Now().After(deadline):
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// inProcess reports whether err says an earlier try of this very
// message (its id) is still being stored: nats-server answers a retry
// that overtakes it with 10158 (JSStreamDuplicateMessageConflict). The
// next try finds it stored or gone.
func inProcess(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == 10158
}

// landed reports whether agg's last event on the stream's leader is the
// message lastID, and its sequence.
func (s *JetStream) landed(ctx context.Context, agg Aggregate, lastID string) (uint64, bool) {
	m, err := s.leader.get(ctx, agg.Kind.Stream(), leaderGetRequest{LastFor: agg.Subject()})
	if err != nil || m.header.Get(jetstream.MsgIDHeader) != lastID {
		return 0, false
	}
	return m.seq, true
}
