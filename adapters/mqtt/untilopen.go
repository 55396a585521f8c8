package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// untilOpen calls open until it succeeds, ctx is done, or it fails for a
// reason that waiting does not cure. On a cluster, a consumer cannot be
// created or reset while its stream has no leader (a node just died, an
// election runs): the engine waits for it, saying so, instead of
// stopping.
func untilOpen(ctx context.Context, log *slog.Logger, what string, open func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		try, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := open(try)
		cancel()
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if !transient(err) {
			return err
		}
		log.Warn("waiting for JetStream", "for", what, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// transient reports whether err is JetStream or the cluster being
// unavailable for a while (timeouts, no responders, no leader), not a
// refusal of what was asked.
func transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
			return false
		}
		// 503s: cluster not available, no leader, not current.
		return api.Code == 503 || api.Code == 500
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, nats.ErrDisconnected)
}
