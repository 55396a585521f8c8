package engine

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Defaults of the engine's handling of lost attempts.
const (
	// DefaultTaskMaxAttempts is how many attempts a task that is not a
	// workflow's makes when its attempts are lost (device offline,
	// deadline passed, interrupted), counting the first, unless it sets
	// max_attempts.
	DefaultTaskMaxAttempts = 3
	// DefaultTaskTimeout is the run time a task without timeout_ms is
	// given by a proplet (the proplet's own default): its deadline counts
	// from it.
	DefaultTaskTimeout = 60 * time.Second
	// DefaultDeadlineGrace is how long after its timeout an attempt's
	// result may still come before the engine gives the attempt up.
	DefaultDeadlineGrace = 30 * time.Second
	// DefaultOfflineSettle is how long a device offline by silence (no
	// heartbeat for the liveness timeout) stays so before its attempts are
	// lost: it has had the liveness timeout already, so only a moment for
	// a heartbeat in flight. A device offline by its last will gets
	// DefaultWillSettle (or the app's liveness timeout).
	DefaultOfflineSettle = 500 * time.Millisecond
	// DefaultWillSettle is how long a device offline by its last will
	// stays so before its attempts are lost: its connection dropped, and
	// when its broker node died it is reconnecting to another, running its
	// tasks meanwhile. The engine gives it the liveness timeout (the app
	// passes its own); a device that is gone for good has its tasks moved
	// then, one that crashed reports them interrupted when it is back.
	DefaultWillSettle = 30 * time.Second
)

// Causes of a lost attempt (events.TaskLost.Cause).
const (
	LostOffline     = "device_offline"
	LostDeadline    = "deadline"
	LostInterrupted = "interrupted"
	// LostNotDeployed: a latent task running on its device in the
	// engine's view, whose device answered an invocation that it does not
	// have it (it restarted and lost it); the next attempt deploys it
	// again, on the same device when it may take it. Such a loss does not
	// count against max_attempts (see counts).
	LostNotDeployed = "not_deployed"
)

// EndedAttempt is an attempt that ended without its result: lost
// (task.lost) or never accepted (task.undelivered). Late: a result of it
// came afterwards and was recorded (task.late_result).
type EndedAttempt struct {
	Attempt int    `json:"attempt"`
	Device  string `json:"device"`
	Reason  string `json:"reason"`
	Late    bool   `json:"late,omitempty"`
}

// LoseTask ends the current attempt, on Device, without its result: its
// device went offline (Cause LostOffline), or its deadline, computed with
// Grace, had passed at Now (LostDeadline). The task goes to Next (a new
// attempt) when its retry policy allows and Next may take it, else it
// fails. Anything else (another attempt, another device, an attempt not
// active, a deadline not yet passed) is a no-op: the command is safe to
// repeat and to send from several engines at once.
type LoseTask struct {
	ID      string
	Attempt int
	Device  string
	Cause   string
	Reason  string // why the device is gone (LostOffline), as recorded
	Next    string
	Now     time.Time
	Grace   time.Duration
}

// MaxAttempts is how many attempts the task makes when they are lost,
// counting the first: its own max_attempts, else DefaultTaskMaxAttempts,
// a workflow's task included. A lost attempt produced no outcome, so
// placing it again is not a retry of the step: the step's retry policy
// still decides what happens when the task fails (the cluster chaos test
// failed a workflow whose step's proplet was killed under it).
func (t Task) MaxAttempts() int {
	if t.TaskCreated.MaxAttempts > 0 {
		return t.TaskCreated.MaxAttempts
	}
	return DefaultTaskMaxAttempts
}

// Deadline is when the engine gives up the running attempt's result: the
// start plus the task's timeout (DefaultTaskTimeout when it has none) plus
// grace. Zero when there is none: the task is not running, is a daemon or
// latent (deployed until stopped; its timeout bounds each invocation), or
// is a workflow's (the workflow times its steps).
func (t Task) Deadline(grace time.Duration) time.Time {
	if t.State != TaskRunning || t.Daemon || t.Latent || t.Workflow != "" || t.StartedAt.IsZero() {
		return time.Time{}
	}
	return t.StartedAt.Add(t.Timeout() + grace)
}

// Timeout is the run time a device gives the task.
func (t Task) Timeout() time.Duration {
	if t.TimeoutMS > 0 {
		return time.Duration(t.TimeoutMS) * time.Millisecond
	}
	return DefaultTaskTimeout
}

// CheckAttempt is the watcher's rule: the LoseTask that ends t's attempt
// at now, because its device dev (found: known to the devices read model)
// has been offline for settle or is revoked, or because its deadline with
// grace has passed; ok is false when the attempt stands. Next is left for
// the caller.
func CheckAttempt(t Task, dev Device, found bool, now time.Time, grace, settle, willSettle time.Duration) (LoseTask, bool) {
	if !t.State.Active() {
		return LoseTask{}, false
	}
	if dev.OfflineByWill {
		settle = max(settle, willSettle)
	}
	c := LoseTask{ID: t.ID, Attempt: t.Attempt, Device: t.Device, Now: now, Grace: grace}
	if found && (dev.Revoked || (dev.State == DeviceOffline && now.Sub(dev.LastChange) >= settle)) {
		c.Cause, c.Reason = LostOffline, "device lost: "+t.Device+" is offline"
		if dev.Revoked {
			c.Reason = "device lost: " + t.Device + " is revoked"
		}
		return c, true
	}
	if d := t.Deadline(grace); !d.IsZero() && !now.Before(d) {
		c.Cause = LostDeadline
		return c, true
	}
	return LoseTask{}, false
}

func decideLose(t Task, c LoseTask) ([]events.Event, error) {
	if !t.State.Active() || c.Attempt != t.Attempt || c.Device != t.Device {
		return nil, nil
	}
	lost := events.TaskLost{Device: t.Device, Attempt: t.Attempt, Cause: c.Cause}
	switch c.Cause {
	case LostOffline:
		lost.Reason = cmp.Or(c.Reason, "device lost: "+t.Device+" is offline")
	case LostDeadline:
		d := t.Deadline(c.Grace)
		if d.IsZero() || c.Now.Before(d) {
			return nil, nil
		}
		lost.Deadline = d
		lost.Reason = fmt.Sprintf("timed out: no result %s after the start (timeout %s, grace %s)",
			t.Timeout()+c.Grace, t.Timeout(), c.Grace)
	case LostNotDeployed:
		if !t.Latent || t.State != TaskRunning {
			return nil, nil
		}
		lost.Reason = cmp.Or(c.Reason, "not deployed: "+t.Device+" answered an invocation that it does not have the latent task")
	default:
		return nil, fmt.Errorf("%w: cause of a lost attempt %q", domain.ErrInvalid, c.Cause)
	}
	return decideLost(t, c.Next, lost), nil
}

// decideLost ends the current attempt with lost, then places the next
// attempt on next, or fails the task.
func decideLost(t Task, next string, lost events.TaskLost) []events.Event {
	if why := t.noRetry(next, lost.Cause); why != "" {
		return []events.Event{lost, events.TaskFailed{Device: t.Device, Attempt: t.Attempt, Reason: lost.Reason + "; " + why}}
	}
	n := t.Lost
	if counts(t, lost.Cause) {
		n++
	}
	return []events.Event{lost, events.TaskScheduled{Device: next, Attempt: t.Attempt + 1, Lost: n}}
}

// counts reports whether a loss of cause counts against t's max_attempts.
// A latent task's deployment its device no longer has (LostNotDeployed)
// does not: the device restarted, which says nothing of the task, and a
// function deployed for months would otherwise fail at its third proplet
// restart. It is bounded all the same: only an invocation finds it, one
// redeploy per call.
func counts(t Task, cause string) bool {
	return !(t.Latent && cause == LostNotDeployed)
}

// noRetry says why the lost attempt is not followed by another on next,
// or "" when it is.
func (t Task) noRetry(next, cause string) string {
	switch limit := t.MaxAttempts(); {
	case counts(t, cause) && t.Lost+1 >= limit:
		return fmt.Sprintf("%d of %d attempts lost", t.Lost+1, limit)
	case t.TargetDevice != "" && next != t.TargetDevice:
		return "the task targets that device"
	case next == "" || (cause == LostOffline && next == t.Device):
		return "no other device can take it"
	}
	return ""
}

// ended returns the attempt's record when it ended without its result on
// device.
func (t Task) ended(attempt int, device string) (EndedAttempt, bool) {
	for _, e := range t.Ended {
		if e.Attempt == attempt && e.Device == device {
			return e, true
		}
	}
	return EndedAttempt{}, false
}

// decideLate records a result of an ended attempt once; a second copy is
// a no-op.
func decideLate(e EndedAttempt, c RecordResult) []events.Event {
	if e.Late {
		return nil
	}
	return one(events.TaskLateResult{Device: e.Device, Attempt: e.Attempt, Result: c.Result, Error: c.Error})
}

// appendEnded adds e without sharing the backing array of the state it
// was folded from.
func appendEnded(ended []EndedAttempt, e EndedAttempt) []EndedAttempt {
	return append(slices.Clip(ended), e)
}

// markLate marks attempt late in a copy of ended.
func markLate(ended []EndedAttempt, attempt int) []EndedAttempt {
	out := slices.Clone(ended)
	for i := range out {
		if out[i].Attempt == attempt {
			out[i].Late = true
		}
	}
	return out
}
