package app

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// DefaultSnapshotInterval is how often the read models' snapshots are
// written (and at shutdown, and after a start that replayed a long tail).
const DefaultSnapshotInterval = 5 * time.Minute

// snapshotTail is how many events a start may replay after the snapshots
// before it writes new ones at once.
const snapshotTail = 10000

// snapshotted are the read models started from snapshots: those whose
// streams grow with use. Artifacts, tokens and secrets replay in full.
func (a *App) snapshotted() []projections.Snapshotter {
	return []projections.Snapshotter{a.tasks, a.devices, a.wfs}
}

// restoreSnapshots loads the snapshots that fit into the empty read models
// (before their catch-up); with snapshots off it does nothing.
func (a *App) restoreSnapshots(ctx context.Context, js jetstream.JetStream) error {
	if a.cfg.SnapshotInterval < 0 {
		return nil
	}
	store, err := created(ctx, a.log, "snapshot bucket", func(ctx context.Context) (*events.Snapshots, error) {
		return events.NewSnapshots(ctx, js, a.cfg.Replicas)
	})
	if err != nil {
		return err
	}
	a.snaps = projections.NewSnapshots(store, a.store, a.quar)
	for _, p := range a.snapshotted() {
		var r projections.Restored
		err := a.untilAvailable(ctx, "snapshot of "+p.Kind().Stream(), func(ctx context.Context) (err error) {
			r, err = a.snaps.Restore(ctx, p)
			return err
		})
		if err != nil {
			return err
		}
		a.restored = append(a.restored, r)
		if r.Seq == 0 {
			a.log.Info("read model replays its whole stream", "stream", r.Kind.Stream(), "snapshot", r.Reason)
		} else {
			a.log.Info("read model starts from its snapshot", "stream", r.Kind.Stream(), "seq", r.Seq)
		}
	}
	return nil
}

// runSnapshots writes the snapshots every interval and once more when ctx
// ends (at shutdown), and at once if the start replayed a long tail.
func (a *App) runSnapshots(ctx context.Context) error {
	if a.snaps == nil {
		return nil
	}
	for _, r := range a.restored {
		if a.modelOf(r.Kind).LastSeq()-r.Seq >= snapshotTail {
			a.saveSnapshots(ctx)
			break
		}
	}
	tick := time.NewTicker(a.cfg.SnapshotInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a.saveSnapshots(final)
			return nil
		case <-tick.C:
			a.saveSnapshots(ctx)
		}
	}
}

func (a *App) modelOf(k events.Kind) projections.Snapshotter {
	for _, p := range a.snapshotted() {
		if p.Kind() == k {
			return p
		}
	}
	return nil
}

// saveSnapshots writes every model's snapshot that changed. A failure is
// logged and retried at the next interval: a snapshot is a cache, and
// without it the next start replays more.
func (a *App) saveSnapshots(ctx context.Context) {
	for _, p := range a.snapshotted() {
		start := time.Now()
		wrote, err := a.snaps.Save(ctx, p)
		switch {
		case err != nil && ctx.Err() != nil:
			return // shutting down: runSnapshots saves once more
		case err != nil:
			a.log.Warn("snapshot not written; the next start replays more", "stream", p.Kind().Stream(), "err", err)
		case wrote:
			a.log.Debug("snapshot written", "stream", p.Kind().Stream(), "seq", p.LastSeq(), "took", time.Since(start))
		}
	}
}
