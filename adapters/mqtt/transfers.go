package mqtt

import (
	"context"
	"errors"

	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TransferCommands is what recording module transfers needs of the engine.
type TransferCommands interface {
	Transfer(ctx context.Context, cmd engine.TransferCommand) (engine.Transfer, error)
	Task(ctx context.Context, cmd engine.TaskCommand) (engine.Task, error)
}

// Transfers records the chunk server's transfers as events in CHUNKS, and
// fails the task a module could not be delivered for.
type Transfers struct{ cmds TransferCommands }

var (
	_ outbound.Progress   = Transfers{}
	_ outbound.TaskFailer = Transfers{}
)

// NewTransfers records transfers with cmds.
func NewTransfers(cmds TransferCommands) Transfers { return Transfers{cmds: cmds} }

// Requested records transfer.requested.
func (t Transfers) Requested(ctx context.Context, tr outbound.Transfer) error {
	spec := events.TransferRequested{AppName: tr.AppName, Digest: tr.Digest, Size: tr.Size, ChunkSize: tr.ChunkSize,
		Total: tr.Total, Requested: tr.Requested, TaskID: tr.TaskID}
	_, err := t.cmds.Transfer(ctx, engine.RequestTransfer{ID: tr.ID, Spec: spec})
	return err
}

// Sent records transfer.sent for chunks from..to.
func (t Transfers) Sent(ctx context.Context, id string, from, to int) error {
	_, err := t.cmds.Transfer(ctx, engine.RecordSent{ID: id, From: from, To: to})
	return err
}

// Completed records transfer.completed.
func (t Transfers) Completed(ctx context.Context, id string) error {
	_, err := t.cmds.Transfer(ctx, engine.CompleteTransfer{ID: id})
	return err
}

// Failed records transfer.failed.
func (t Transfers) Failed(ctx context.Context, id, reason string) error {
	_, err := t.cmds.Transfer(ctx, engine.FailTransfer{ID: id, Reason: reason})
	return err
}

// FailTask fails the task; a task that does not exist is no error.
func (t Transfers) FailTask(ctx context.Context, id, reason string) error {
	_, err := t.cmds.Task(ctx, engine.FailTask{ID: id, Reason: reason})
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	return err
}
