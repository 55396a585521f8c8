package app

import (
	"context"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/timers"
	"github.com/jetprop/jetprop/engine/service"
)

// timerStore adapts the TIMERS stream to the workflow process manager.
type timerStore struct{ t *timers.Timers }

func (s timerStore) Schedule(ctx context.Context, id string, at time.Time, payload []byte) error {
	return s.t.Schedule(ctx, timers.Timer{ID: id, At: at, Kind: "workflow", Payload: payload})
}

func (s timerStore) Cron(ctx context.Context, id, expr, tz string, payload []byte) error {
	return s.t.Cron(ctx, id, expr, tz, payload)
}

func (s timerStore) Cancel(ctx context.Context, id string) error { return s.t.Cancel(ctx, id) }

// fireTimer hands a fired timer to the task cron (a task's schedule) or
// to the workflow process manager. A cron firing is
// named after the second it fired at (the same on a redelivery).
func (a *App) fireTimer(ctx context.Context, f timers.Fired) error {
	if strings.HasPrefix(f.ID, service.TaskCronPrefix) {
		return a.tcron.Fire(ctx, f.ID)
	}
	due := f.Due
	if due.IsZero() {
		due = f.FiredAt.UTC().Truncate(time.Second)
	}
	return a.wfm.FireTimer(ctx, f.Payload, due)
}
