package engine_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Lost attempts: the states a LoseTask or an interrupted result is decided on.
var (
	createdTimed = events.TaskCreated{Name: "add", Module: digest, TimeoutMS: 10_000}
	runningTimed = taskOf(createdTimed, sched1, started1) // started at t0+2s
	lost1        = events.TaskLost{Device: "dev-a", Attempt: 1, Cause: engine.LostOffline, Reason: "device lost: dev-a is offline"}
	movedLost    = events.TaskScheduled{Device: "dev-b", Attempt: 2, Lost: 1}
	afterLoss    = taskOf(created, sched1, started1, lost1, movedLost)
	lost2        = events.TaskLost{Device: "dev-b", Attempt: 2, Cause: engine.LostOffline, Reason: "device lost: dev-b is offline"}
	movedLost2   = events.TaskScheduled{Device: "dev-c", Attempt: 3, Lost: 2}
	lostTwice    = taskOf(created, sched1, started1, lost1, movedLost, lost2, movedLost2)
)

func loseOffline(device string, attempt int, next string) engine.LoseTask {
	return engine.LoseTask{ID: "t1", Attempt: attempt, Device: device, Cause: engine.LostOffline,
		Reason: "device lost: " + device + " is offline", Next: next}
}

func TestDecideTask_LoseOffline(t *testing.T) {
	wfTask := created
	wfTask.Workflow, wfTask.Step = "wf1", "s"
	once := created
	once.MaxAttempts = 1
	targeted := created
	targeted.TargetDevice = "dev-a"
	runDecideTask(t, []decideTaskTest{
		{name: "running: next attempt elsewhere", task: running, cmd: loseOffline("dev-a", 1, "dev-b"), want: evs(lost1, movedLost)},
		{name: "scheduled: next attempt elsewhere", task: scheduled, cmd: loseOffline("dev-a", 1, "dev-b"), want: evs(lost1, movedLost)},
		{name: "no device left", task: running, cmd: loseOffline("dev-a", 1, ""), want: evs(lost1,
			events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "device lost: dev-a is offline; no other device can take it"})},
		{name: "next is the lost device", task: running, cmd: loseOffline("dev-a", 1, "dev-a"), want: evs(lost1,
			events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "device lost: dev-a is offline; no other device can take it"})},
		{name: "policy exhausted", task: lostTwice, cmd: loseOffline("dev-c", 3, "dev-d"), want: evs(
			events.TaskLost{Device: "dev-c", Attempt: 3, Cause: engine.LostOffline, Reason: "device lost: dev-c is offline"},
			events.TaskFailed{Device: "dev-c", Attempt: 3, Reason: "device lost: dev-c is offline; 3 of 3 attempts lost"})},
		{name: "max_attempts 1", task: taskOf(once, sched1, started1), cmd: loseOffline("dev-a", 1, "dev-b"), want: evs(lost1,
			events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "device lost: dev-a is offline; 1 of 1 attempts lost"})},
		{name: "workflow task: placed again, as a plain one", task: taskOf(wfTask, sched1, started1), cmd: loseOffline("dev-a", 1, "dev-b"), want: evs(lost1,
			events.TaskScheduled{Device: "dev-b", Attempt: 2, Lost: 1})},
		{name: "targeted", task: taskOf(targeted, sched1, started1), cmd: loseOffline("dev-a", 1, "dev-b"), want: evs(lost1,
			events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "device lost: dev-a is offline; the task targets that device"})},
		{name: "repeated after the move: no-op", task: afterLoss, cmd: loseOffline("dev-a", 1, "dev-c")},
		{name: "another device", task: running, cmd: loseOffline("dev-x", 1, "dev-b")},
		{name: "another attempt", task: running, cmd: loseOffline("dev-a", 2, "dev-b")},
		{name: "completed", task: completed, cmd: loseOffline("dev-a", 1, "dev-b")},
		{name: "stopped", task: stopped, cmd: loseOffline("dev-a", 1, "dev-b")},
		{name: "unknown cause", task: running, cmd: engine.LoseTask{ID: "t1", Attempt: 1, Device: "dev-a", Cause: "x"}, wantErr: domain.ErrInvalid},
		{name: "unknown task", task: none, cmd: loseOffline("dev-a", 1, "dev-b"), wantErr: domain.ErrNotFound},
	})
}

func TestDecideTask_LoseDeadline(t *testing.T) {
	grace := 5 * time.Second
	deadline := t0.Add(2*time.Second + 10*time.Second + grace)
	expire := func(now time.Time, next string) engine.LoseTask {
		return engine.LoseTask{ID: "t1", Attempt: 1, Device: "dev-a", Cause: engine.LostDeadline, Next: next, Now: now, Grace: grace}
	}
	timedOut := events.TaskLost{Device: "dev-a", Attempt: 1, Cause: engine.LostDeadline, Deadline: deadline,
		Reason: "timed out: no result 15s after the start (timeout 10s, grace 5s)"}
	daemon := createdTimed
	daemon.Daemon = true
	wfTask := createdTimed
	wfTask.Workflow = "wf1"
	runDecideTask(t, []decideTaskTest{
		{name: "at the deadline", task: runningTimed, cmd: expire(deadline, "dev-b"), want: evs(timedOut, movedLost)},
		{name: "on the same device", task: runningTimed, cmd: expire(deadline, "dev-a"), want: evs(timedOut,
			events.TaskScheduled{Device: "dev-a", Attempt: 2, Lost: 1})},
		{name: "no device", task: runningTimed, cmd: expire(deadline.Add(time.Hour), ""), want: evs(timedOut,
			events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: timedOut.Reason + "; no other device can take it"})},
		{name: "before the deadline", task: runningTimed, cmd: expire(deadline.Add(-time.Millisecond), "dev-b")},
		{name: "default timeout", task: running, cmd: expire(t0.Add(2*time.Second+engine.DefaultTaskTimeout+grace), "dev-b"), want: evs(
			events.TaskLost{Device: "dev-a", Attempt: 1, Cause: engine.LostDeadline, Deadline: t0.Add(2*time.Second + engine.DefaultTaskTimeout + grace),
				Reason: "timed out: no result 1m5s after the start (timeout 1m0s, grace 5s)"}, movedLost)},
		{name: "scheduled: the accept timeout's", task: taskOf(createdTimed, sched1), cmd: expire(deadline.Add(time.Hour), "dev-b")},
		{name: "daemon: none", task: taskOf(daemon, sched1, started1), cmd: expire(deadline.Add(time.Hour), "dev-b")},
		{name: "workflow task: the workflow's", task: taskOf(wfTask, sched1, started1), cmd: expire(deadline.Add(time.Hour), "dev-b")},
		{name: "completed", task: completed, cmd: expire(deadline.Add(time.Hour), "dev-b")},
	})
}

func TestDecideTask_Interrupted(t *testing.T) {
	interrupted := func(attempt int, next string) engine.RecordResult {
		return engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: attempt, Result: json.RawMessage(`null`),
			Error: "interrupted: proplet restarted", Interrupted: true, Next: next}
	}
	lost := events.TaskLost{Device: "dev-a", Attempt: 1, Cause: engine.LostInterrupted, Reason: "interrupted: proplet restarted"}
	runDecideTask(t, []decideTaskTest{
		{name: "on the same device", task: running, cmd: interrupted(1, "dev-a"), want: evs(lost,
			events.TaskScheduled{Device: "dev-a", Attempt: 2, Lost: 1})},
		{name: "no device", task: running, cmd: interrupted(1, ""), want: evs(lost,
			events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "interrupted: proplet restarted; no other device can take it"})},
		{name: "an older attempt: late", task: afterLoss, cmd: interrupted(1, "dev-a"), want: evs(
			events.TaskLateResult{Device: "dev-a", Attempt: 1, Result: json.RawMessage(`null`), Error: "interrupted: proplet restarted"})},
		{name: "not interrupted: a failure", task: running, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Error: "trap"},
			want: evs(failed1)},
	})
}

func TestDecideTask_LateResult(t *testing.T) {
	late := engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: json.RawMessage(`"3"`)}
	lateEv := events.TaskLateResult{Device: "dev-a", Attempt: 1, Result: json.RawMessage(`"3"`)}
	undelivered := taskOf(created, sched1, events.TaskUndelivered{Device: "dev-a", Attempt: 1, Reason: "r"}, sched2)
	lostFailed := taskOf(created, sched1, started1, lost1, events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "x"})
	runDecideTask(t, []decideTaskTest{
		{name: "after a loss", task: afterLoss, cmd: late, want: evs(lateEv)},
		{name: "recorded already: no-op", task: taskOf(created, sched1, started1, lost1, movedLost, lateEv), cmd: late},
		{name: "after the new attempt completed", task: taskOf(created, sched1, started1, lost1, movedLost, completed2), cmd: late, want: evs(lateEv)},
		{name: "after an undelivered start", task: undelivered, cmd: late, want: evs(lateEv)},
		{name: "after the loss failed the task", task: lostFailed, cmd: late, want: evs(lateEv)},
		{name: "from another device: stale", task: afterLoss, cmd: engine.RecordResult{ID: "t1", Device: "dev-x", Attempt: 1}, wantErr: domain.ErrStale},
		{name: "after a stop and restart: stale as before", task: retried, cmd: late, wantErr: domain.ErrStale},
	})
	after := taskOf(created, sched1, started1, lost1, movedLost, lateEv, completed2)
	if after.State != engine.TaskCompleted || after.Attempt != 2 || string(after.Result) != `"3"` || !after.Ended[0].Late {
		t.Fatalf("task after a late result and the new attempt's = %+v", after)
	}
}

func TestTask_ApplyLost(t *testing.T) {
	if afterLoss.State != engine.TaskScheduled || afterLoss.Device != "dev-b" || afterLoss.Attempt != 2 || afterLoss.Lost != 1 {
		t.Fatalf("after a loss: %+v", afterLoss)
	}
	want := []engine.EndedAttempt{{Attempt: 1, Device: "dev-a", Reason: lost1.Reason}, {Attempt: 2, Device: "dev-b", Reason: lost2.Reason}}
	sameState(t, "ended", lostTwice.Ended, want)
	if lostTwice.Lost != 2 {
		t.Fatalf("lost = %d, want 2", lostTwice.Lost)
	}
	restarted := taskOf(created, sched1, started1, lost1, events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "x"}, sched2)
	if restarted.Lost != 0 {
		t.Fatalf("a user's start keeps lost = %d, want 0", restarted.Lost)
	}
	// the fold never writes into the backing array of the state it came from
	before := taskOf(created, sched1, started1, lost1, movedLost)
	_ = before.Apply(events.Envelope{Seq: 9}, lost2)
	_ = before.Apply(events.Envelope{Seq: 9}, events.TaskLateResult{Device: "dev-a", Attempt: 1})
	if len(before.Ended) != 1 || before.Ended[0].Late {
		t.Fatalf("the state folded from changed: %+v", before.Ended)
	}
}

func TestCheckAttempt(t *testing.T) {
	grace := 5 * time.Second
	up := engine.Device{ID: "dev-a", State: engine.DeviceAlive}
	down := engine.Device{ID: "dev-a", State: engine.DeviceOffline, LastChange: t0.Add(-time.Second)}
	justDown := engine.Device{ID: "dev-a", State: engine.DeviceOffline, LastChange: t0.Add(-time.Second + time.Millisecond)}
	revoked := engine.Device{ID: "dev-a", State: engine.DeviceOffline, Revoked: true}
	// By its last will: its connection dropped; it gets the will's settle
	// (a minute here) to come back on another node.
	willDown := engine.Device{ID: "dev-a", State: engine.DeviceOffline, OfflineByWill: true, LastChange: t0.Add(-time.Second)}
	willGone := engine.Device{ID: "dev-a", State: engine.DeviceOffline, OfflineByWill: true, LastChange: t0.Add(-time.Minute)}
	deadline := t0.Add(17 * time.Second)
	tests := []struct {
		name      string
		task      engine.Task
		dev       engine.Device
		found     bool
		now       time.Time
		wantCause string
	}{
		{name: "up, in time", task: runningTimed, dev: up, found: true, now: deadline.Add(-time.Millisecond)},
		{name: "offline", task: runningTimed, dev: down, found: true, now: t0, wantCause: engine.LostOffline},
		{name: "offline, not settled", task: runningTimed, dev: justDown, found: true, now: t0},
		{name: "offline by its last will, reconnecting", task: runningTimed, dev: willDown, found: true, now: t0},
		{name: "offline by its last will, gone", task: runningTimed, dev: willGone, found: true, now: t0, wantCause: engine.LostOffline},
		{name: "revoked", task: scheduled, dev: revoked, found: true, now: t0, wantCause: engine.LostOffline},
		{name: "deadline", task: runningTimed, dev: up, found: true, now: deadline, wantCause: engine.LostDeadline},
		{name: "unknown device, deadline", task: runningTimed, found: false, now: deadline, wantCause: engine.LostDeadline},
		{name: "unknown device, in time", task: runningTimed, found: false, now: t0},
		{name: "not active", task: completed, dev: down, found: true, now: deadline},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := engine.CheckAttempt(tc.task, tc.dev, tc.found, tc.now, grace, time.Second, time.Minute)
			if ok != (tc.wantCause != "") || c.Cause != tc.wantCause {
				t.Fatalf("CheckAttempt = %+v, %v; want cause %q", c, ok, tc.wantCause)
			}
			if !ok {
				return
			}
			c.Next = "dev-b"
			got, err := engine.DecideTask(tc.task, c)
			if err != nil || len(got) != 2 {
				t.Fatalf("deciding what CheckAttempt returned: %v, %v", got, err)
			}
		})
	}
}
