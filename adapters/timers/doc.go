// Package timers is jetprop's durable timer service on JetStream message
// schedules (written against nats-server 2.15.2): retry backoffs,
// attempt timeouts, workflow deadlines and cron triggers that survive a
// restart of the engine and of the server.
//
// # Layout
//
// One stream, TIMERS (file storage, AllowMsgSchedules, AllowRollup). A timer
// is one schedule message on jp.timer.sched.<id> carrying
// "Nats-Schedule: @at <RFC3339>" (or a cron expression) and
// "Nats-Schedule-Target: jp.timer.fire.<id>". When it falls due the server
// itself publishes a copy, minus the Nats-Schedule* headers, on the target;
// our Jp-Timer-Id, Jp-Timer-Kind and Jp-Timer-Due headers and the payload are
// kept. For @at the server then purges the schedule message. Run reads
// jp.timer.fire.> through a durable consumer.
//
// # Replace and cancel
//
// The server stores every schedule with "Nats-Rollup: sub", so scheduling an
// ID that is still pending replaces the earlier timer (time, kind, payload):
// it fires once, at the new time. Cancel purges both subjects of the ID.
// Neither can recall a firing already handed to a handler; a handler that
// must ignore stale timers compares Fired.Due or its payload with its state.
//
// # Delivery
//
// At least once. Run acknowledges after fn returns nil and then deletes the
// handled copy; an error naks it with Options.RetryDelay and it comes back,
// with no limit on attempts. A crash between fn and the ack delivers again,
// so fn must be idempotent (workflow timers carry the attempt they belong to).
//
// # While the engine or the server was down (measured, nats-server 2.15.2)
//
//   - Engine (Run) down, server up: timers fire on time into the stream and
//     wait there; the durable consumer delivers them when Run starts again.
//     Fired.FiredAt is when the server fired, Fired.Due when it was meant to.
//   - Server down: schedules are persisted with the stream. A timer due while
//     the server was down fires right after the stream is recovered (about
//     2 ms after the restarted server was ready, in TestTimers_SurviveRestart);
//     a timer not yet due fires on time (about 1 ms late). The server checks
//     schedules at most every 250 ms, so a timer in the past fires within
//     about 250 ms of being scheduled.
//
// # Cron and missed runs
//
// Cron takes the server's 6-field expression with seconds
// ("0 30 9 * * 1-5") or @yearly, @monthly, @weekly, @daily, @hourly, and an
// IANA zone (Nats-Schedule-Time-Zone, UTC if empty). The policy for runs
// missed while the server was down is the server's, "fire once, then skip
// ahead": all missed runs together fire once, right after the restart, and
// the schedule continues with the next future run (TestTimers_CronMissedRuns:
// a per-second cron stopped for 3 s fired once at restart, not 3 times).
// A cron firing has Kind "cron", Fired.Next (the next run) and a zero Due:
// the server does not tell which run a firing stands for. Runs that fired
// while only the engine was down are each a message of their own and are all
// delivered (by design of the layout; not measured). Cron also accepts
// "@every <duration>" (at least 1s, no zone; the server applies the same
// skip-ahead policy, read in its source, not measured).
package timers
