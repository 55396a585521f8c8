package events

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// unavailableCodes are the JetStream API error codes of a store that
// cannot serve now but will again without anyone's help: a cluster
// electing a leader, a stream whose replicas are catching up or offline.
// The numbers are nats-server's (server/errors.json).
var unavailableCodes = map[jetstream.ErrorCode]bool{
	10008: true, // JSClusterNotAvailErr: JetStream system temporarily unavailable
	10009: true, // JSClusterNotLeaderErr: JetStream cluster can not handle request
	10039: true, // JSNotEnabledForAccountErr: off for the account, as account updates turn it on and off
	10076: true, // JSNotEnabledErr: JetStream not (yet, or no longer) enabled
	10118: true, // JSStreamOfflineErr: stream is offline
	10163: true, // JSStreamExpectedLastSeqPerSubjectNotReady: temporarily unavailable
	10194: true, // JSStreamOfflineReasonErrF: stream is offline: {err}
}

// unavailableErrs are the client's errors of a server it cannot reach or
// that did not answer: no responders (no stream leader, JetStream off),
// a connection lost or being re-established, a request that timed out.
var unavailableErrs = []error{
	nats.ErrNoResponders, jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled,
	nats.ErrTimeout, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting,
	nats.ErrNoServers, nats.ErrDisconnected, context.DeadlineExceeded,
}

// Unavailable reports whether err says the event store is unavailable for
// now (a leader election, no responders, a lost connection, a request
// that timed out): worth trying again in a moment, unlike a conflict or a
// refusal. It decides by error identity and JetStream error codes only,
// anywhere in err's chain, so it classifies the errors of every JetStream
// user (the event streams, the module object store, key-value buckets).
// A context.DeadlineExceeded counts: the store did not answer in time; a
// caller whose own context ended should not ask.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	for _, u := range unavailableErrs {
		if errors.Is(err, u) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && unavailableCodes[apiErr.ErrorCode]
}
