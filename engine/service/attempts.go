package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jetprop/jetprop/engine"
)

// ActiveTasks lists the tasks with an attempt out on a device (the tasks
// read model's Active).
type ActiveTasks interface {
	Active() []engine.Task
}

// DefaultAttemptSweep is how often the AttemptWatch looks at every active
// task when nothing nudges it sooner.
const DefaultAttemptSweep = time.Second

// AttemptWatchConfig configures an AttemptWatch.
type AttemptWatchConfig struct {
	// Grace is how long after its timeout a running attempt's result may
	// come (engine.DefaultDeadlineGrace when 0).
	Grace time.Duration
	// Sweep is the period of the sweep (DefaultAttemptSweep when 0).
	Sweep time.Duration
	// Settle is how long a device is offline before its attempts are lost
	// (engine.DefaultOfflineSettle when 0).
	Settle time.Duration
	// WillSettle is how long a device offline by its last will is given to
	// come back, reconnected (engine.DefaultWillSettle when 0; the app
	// gives the liveness timeout).
	WillSettle time.Duration
}

func (c *AttemptWatchConfig) setDefaults() {
	if c.Grace == 0 {
		c.Grace = engine.DefaultDeadlineGrace
	}
	if c.Sweep == 0 {
		c.Sweep = DefaultAttemptSweep
	}
	if c.WillSettle == 0 {
		c.WillSettle = engine.DefaultWillSettle
	}
	if c.Settle == 0 {
		c.Settle = engine.DefaultOfflineSettle
	}
}

// Validate checks the durations.
func (c AttemptWatchConfig) Validate() error {
	if c.Grace < 0 || c.Sweep < 0 || c.Settle < 0 || c.WillSettle < 0 {
		return fmt.Errorf("attempt watch: grace %s, sweep %s and settle %s must not be negative", c.Grace, c.Sweep, c.Settle)
	}
	return nil
}

// AttemptWatch is the process manager that ends attempts that will not
// report: the attempt's device went offline (a last will, the liveness
// timeout) Settle ago or was revoked, or the attempt's deadline passed
// (engine.CheckAttempt). It sweeps the active tasks every Sweep, and at
// once when a device stops being placeable. The decision is the task
// decider's (engine.LoseTask); the watch only supplies the time and the
// next device. Every engine replica may run one: a LoseTask names its
// attempt and device, so a repeat, or the same loss seen by two replicas,
// decides nothing on the state the first one wrote (the handler appends
// with the expected sequence and decides again after a conflict).
type AttemptWatch struct {
	svc    *Service
	active ActiveTasks
	clock  Clock
	cfg    AttemptWatchConfig
	log    *slog.Logger
	nudge  chan struct{}

	lost, errs atomic.Int64
}

// NewAttemptWatch returns a watch over the service's devices and the
// active tasks. log may be nil.
func NewAttemptWatch(svc *Service, active ActiveTasks, clock Clock, cfg AttemptWatchConfig, log *slog.Logger) (*AttemptWatch, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &AttemptWatch{svc: svc, active: active, clock: clock, cfg: cfg, log: log, nudge: make(chan struct{}, 1)}
	svc.devices.ObservePlaceable(w.observe)
	return w, nil
}

// observe nudges the sweep when a device stops being placeable; it runs
// under the devices read model's lock, so it only signals.
func (w *AttemptWatch) observe(_ string, placeable bool) {
	if placeable {
		return
	}
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// AttemptWatchStats counts what the watch did.
type AttemptWatchStats struct {
	Lost   int64 // attempts it ended (LoseTask commands that decided something)
	Errors int64 // commands that failed
}

// Stats returns the counts so far.
func (w *AttemptWatch) Stats() AttemptWatchStats {
	return AttemptWatchStats{Lost: w.lost.Load(), Errors: w.errs.Load()}
}

// Run sweeps until ctx is done.
func (w *AttemptWatch) Run(ctx context.Context) error {
	tick := time.NewTicker(w.cfg.Sweep)
	defer tick.Stop()
	for {
		if _, err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("attempt sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-w.nudge:
		}
	}
}

// Sweep ends every active attempt whose device is gone or whose deadline
// has passed now, and returns how many it ended. It goes on past a
// failed command and returns the errors joined.
func (w *AttemptWatch) Sweep(ctx context.Context) (int, error) {
	now := w.clock.Now()
	n := 0
	var errs []error
	for _, t := range w.active.Active() {
		dev, found := w.svc.devices.Get(t.Device)
		c, ok := engine.CheckAttempt(t, dev, found, now, w.cfg.Grace, w.cfg.Settle, w.cfg.WillSettle)
		if !ok {
			continue
		}
		ended, err := w.svc.LoseAttempt(ctx, c)
		if err != nil {
			w.errs.Add(1)
			errs = append(errs, fmt.Errorf("task %s attempt %d: %w", t.ID, t.Attempt, err))
			continue
		}
		if ended {
			n++
			w.lost.Add(1)
			w.log.Info("attempt lost", "task", t.ID, "attempt", t.Attempt, "device", t.Device, "cause", c.Cause)
		}
	}
	return n, errors.Join(errs...)
}

// LoseAttempt ends the attempt c names (engine.LoseTask) and places the
// next one: on the task's target device when it has one, else where
// placement puts it now; the decider fails the task when its retry policy
// or the fleet does not allow another attempt. It reports whether the
// attempt ended now (false: it had ended already, or is not due).
func (s *Service) LoseAttempt(ctx context.Context, c engine.LoseTask) (bool, error) {
	t, err := s.GetTask(c.ID)
	if err != nil {
		return false, err
	}
	c.Next = s.place(t.TargetDevice)
	after, err := s.do(ctx, c)
	if err != nil {
		return false, err
	}
	return after.Seq != t.Seq && lostAttempt(after, c.Attempt), nil
}

// RecordInterrupted records a result its device marked interrupted (a
// restart or a shutdown of the proplet cut the attempt short): the
// attempt is lost, and the next one goes where placement puts it, or,
// when no device is placeable, back to the device that reported, which
// is evidently up again. A result of an attempt that had ended already is
// recorded as late.
func (s *Service) RecordInterrupted(ctx context.Context, cmd engine.RecordResult) (engine.Task, error) {
	cmd.Interrupted = true
	if t, ok := s.tasks.Get(cmd.ID); ok {
		cmd.Next = s.place(t.TargetDevice)
	}
	if cmd.Next == "" {
		cmd.Next = cmd.Device
	}
	return s.do(ctx, cmd)
}

// lostAttempt reports whether attempt is among t's ended attempts.
func lostAttempt(t engine.Task, attempt int) bool {
	for _, e := range t.Ended {
		if e.Attempt == attempt {
			return true
		}
	}
	return false
}
