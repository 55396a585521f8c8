package app

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jetprop/jetprop/events"
)

// Creating streams, buckets and consumers at start, when JetStream is
// clustered: each try gets createTry; a try that timed out or found
// JetStream unavailable is made again after a random pause of up to
// createJitter (so nodes that started together stop colliding), for
// createFor at most.
const (
	createTry    = 2 * time.Second
	createJitter = time.Second
	createFor    = 2 * time.Minute
)

// created runs fn, which creates JetStream resources, until it succeeds,
// fails for another reason than a lost answer, or createFor passes. In a
// cluster an answer is lost when nodes create the same stream at once
// (nats-server 2.15.2 answers at most one of concurrent creates of a
// stream, often none: measured with three nodes, the others time out), or
// while the meta leader changes; trying again finds the stream made.
func created[T any](ctx context.Context, log *slog.Logger, what string, fn func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(createFor)
	for {
		tctx, cancel := context.WithTimeout(ctx, createTry)
		v, err := fn(tctx)
		cancel()
		if err == nil || !events.Unavailable(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return v, err
		}
		log.Info("JetStream did not answer; trying again", "creating", what, "err", err)
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(rand.N(createJitter)):
		}
	}
}
