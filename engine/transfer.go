package engine

import (
	"fmt"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Transfer is the delivery of one module to one target, folded from its
// events. Each request starts a new round.
type Transfer struct {
	ID        string `json:"id"`
	AppName   string `json:"app_name"`
	Digest    string `json:"digest,omitempty"`
	Total     int    `json:"total_chunks"`
	Rounds    int    `json:"rounds"`
	Requested int    `json:"requested"` // in the current round
	Sent      int    `json:"sent"`      // in the current round
	SentAll   int    `json:"sent_all"`  // over every round
	Completed bool   `json:"completed"`
	Failed    string `json:"failed,omitempty"`
	Seq       uint64 `json:"seq"`
}

// LastSeq is the sequence of the last event applied.
func (t Transfer) LastSeq() uint64 { return t.Seq }

// Apply folds one event into the transfer.
func (t Transfer) Apply(env events.Envelope, ev events.Event) Transfer {
	t.ID, t.Seq = env.Aggregate.ID, env.Seq
	switch e := ev.(type) {
	case events.TransferRequested:
		t.AppName, t.Digest, t.Total = e.AppName, e.Digest, e.Total
		t.Rounds++
		t.Requested, t.Sent, t.Completed, t.Failed = e.Requested, 0, false, ""
	case events.TransferSent:
		n := e.To - e.From + 1
		t.Sent += n
		t.SentAll += n
	case events.TransferCompleted:
		t.Completed = true
	case events.TransferFailed:
		t.Failed = e.Reason
	}
	return t
}

// Transfer commands.
type (
	// RequestTransfer opens a round of a transfer.
	RequestTransfer struct {
		ID   string
		Spec events.TransferRequested
	}
	// RecordSent records chunks From..To published.
	RecordSent struct {
		ID       string
		From, To int
	}
	// CompleteTransfer closes the round.
	CompleteTransfer struct{ ID string }
	// FailTransfer records why the module cannot be delivered.
	FailTransfer struct {
		ID     string
		Reason string
	}
)

// TransferCommand is any transfer command.
type TransferCommand interface{ TransferID() string }

func (c RequestTransfer) TransferID() string  { return c.ID }
func (c RecordSent) TransferID() string       { return c.ID }
func (c CompleteTransfer) TransferID() string { return c.ID }
func (c FailTransfer) TransferID() string     { return c.ID }

// DecideTransfer returns the events cmd causes on t.
func DecideTransfer(t Transfer, cmd TransferCommand) ([]events.Event, error) {
	switch c := cmd.(type) {
	case RequestTransfer:
		if c.Spec.AppName == "" || c.Spec.Requested < 0 {
			return nil, fmt.Errorf("%w: transfer request without a module or with a negative count", domain.ErrInvalid)
		}
		return one(c.Spec), nil
	case RecordSent:
		if t.Rounds == 0 || c.From < 0 || c.To < c.From || (t.Total > 0 && c.To >= t.Total) {
			return nil, fmt.Errorf("%w: chunks %d..%d of transfer %s (%d chunks, %d rounds)", domain.ErrInvalid, c.From, c.To, c.ID, t.Total, t.Rounds)
		}
		return one(events.TransferSent{From: c.From, To: c.To}), nil
	case CompleteTransfer:
		if t.Rounds == 0 || t.Completed {
			return nil, nil
		}
		return one(events.TransferCompleted{Sent: t.Sent}), nil
	case FailTransfer:
		if t.Failed == c.Reason {
			return nil, nil
		}
		return one(events.TransferFailed{Reason: c.Reason}), nil
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}
