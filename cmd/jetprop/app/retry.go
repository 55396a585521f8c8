package app

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// errNoPeersYet is nats-server's JSClusterNoPeersErr ("no suitable peers
// for placement"): at a cluster's start, a node the meta leader has not
// heard from yet counts as offline, and a stream with one replica per node
// cannot be placed until it has (seen on a loaded box: an engine started
// beside a cluster that had just formed exited at its first create). A
// cluster with fewer nodes than replicas gets the same answer for good:
// it is told after createFor, with the error.
const errNoPeersYet jetstream.ErrorCode = 10005

// retryCreate reports whether a create that failed with err may succeed
// if made again in a moment.
func retryCreate(err error) bool {
	var apiErr *jetstream.APIError
	return events.Unavailable(err) || errors.As(err, &apiErr) && apiErr.ErrorCode == errNoPeersYet
}

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
		if err == nil || !retryCreate(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return v, err
		}
		log.Info("JetStream cannot do it yet; trying again", "creating", what, "err", err)
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(rand.N(createJitter)):
		}
	}
}
