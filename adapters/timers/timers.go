package timers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream and subject layout.
const (
	StreamName     = "TIMERS"
	SchedPrefix    = "jp.timer.sched." // pending schedules, one subject per timer id
	FirePrefix     = "jp.timer.fire."  // where the server publishes a timer when it fires
	DefaultDurable = "jp-timers"
	// DefaultRetryDelay is how long a fired timer waits before redelivery
	// after the handler returned an error.
	DefaultRetryDelay = time.Second
)

// Our header names on schedule messages; the server copies them onto the
// fired message (it strips only Nats-Schedule* and a few others).
const (
	HeaderID   = "Jp-Timer-Id"
	HeaderKind = "Jp-Timer-Kind"
	HeaderDue  = "Jp-Timer-Due"
)

// nats-server's message-schedule headers (server/stream.go, v2.15).
const (
	hdrSchedule          = "Nats-Schedule"
	hdrTarget            = "Nats-Schedule-Target"
	hdrTimeZone          = "Nats-Schedule-Time-Zone"
	hdrScheduleNext      = "Nats-Schedule-Next"
	hdrScheduleNextPurge = "purge"
)

// KindCron is the Kind of timers created by Cron.
const KindCron = "cron"

// Errors callers branch on.
var (
	ErrInvalidID       = errors.New("timers: id must be a non-empty subject token")
	ErrInvalidTimeZone = errors.New("timers: unknown time zone")
)

// Timer is a one-shot durable timer.
type Timer struct {
	ID      string    // a valid subject token; scheduling the same ID again replaces the timer
	At      time.Time // when it fires; a time in the past fires promptly
	Kind    string    // free-form: "retry", "timeout", "deadline", ...
	Payload []byte
}

// Fired is a timer delivered to the handler passed to Run.
type Fired struct {
	ID      string
	Kind    string
	Payload []byte
	Due     time.Time // the time it was scheduled for; zero for cron timers
	Next    time.Time // cron only: the next time the schedule fires
	FiredAt time.Time // when the server published it
}

// Options declares the stream and the consumer.
type Options struct {
	Replicas   int           // 1 on a single box (default), 3 in a cluster
	Durable    string        // consumer name used by Run; DefaultDurable if empty
	RetryDelay time.Duration // nak delay after a handler error; DefaultRetryDelay if 0
	Logger     *slog.Logger  // for failures Run cannot return; discarded if nil
}

// Timers schedules durable timers on the TIMERS stream.
type Timers struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	opts   Options
}

// New creates (idempotently) the TIMERS stream and returns a Timers.
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Timers, error) {
	if opts.Durable == "" {
		opts.Durable = DefaultDurable
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st, err := js.CreateOrUpdateStream(ctx, streamConfig(opts))
	if err != nil {
		return nil, fmt.Errorf("timers: create stream %s: %w", StreamName, err)
	}
	return &Timers{js: js, stream: st, opts: opts}, nil
}

func streamConfig(opts Options) jetstream.StreamConfig {
	r := opts.Replicas
	if r == 0 {
		r = 1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "jetprop durable timers",
		Subjects:    []string{SchedPrefix + ">", FirePrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld, // schedules cannot use discard new
		Replicas:    r,
		// The server stores every schedule with Nats-Rollup: sub, so the
		// last schedule on a subject replaces the earlier ones.
		AllowRollup:       true,
		AllowMsgSchedules: true,
	}
}

// Schedule stores t; it fires at t.At (at least once). Scheduling an ID
// that is still pending replaces it.
func (t *Timers) Schedule(ctx context.Context, tm Timer) error {
	if !validToken(tm.ID) {
		return fmt.Errorf("%w: %q", ErrInvalidID, tm.ID)
	}
	due := tm.At.UTC().Format(time.RFC3339Nano)
	msg := t.scheduleMsg(tm.ID, tm.Kind, tm.Payload)
	msg.Header.Set(hdrSchedule, "@at "+due)
	msg.Header.Set(HeaderDue, due)
	return t.publish(ctx, msg)
}

// Cron stores a repeating timer: expr is a 6-field cron expression with
// seconds ("0 30 9 * * 1-5") or @hourly, @daily, ...; tz is an IANA zone
// name ("" means UTC). Every firing is delivered with Kind "cron". It runs
// until Cancel. payload comes back with every firing.
func (t *Timers) Cron(ctx context.Context, id, expr, tz string, payload []byte) error {
	if !validToken(id) {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	msg := t.scheduleMsg(id, KindCron, payload)
	msg.Header.Set(hdrSchedule, expr)
	if tz != "" {
		if _, err := time.LoadLocation(tz); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrInvalidTimeZone, tz, err)
		}
		msg.Header.Set(hdrTimeZone, tz)
	}
	return t.publish(ctx, msg)
}

func (t *Timers) scheduleMsg(id, kind string, payload []byte) *nats.Msg {
	msg := nats.NewMsg(SchedPrefix + id)
	msg.Data = payload
	msg.Header.Set(hdrTarget, FirePrefix+id)
	msg.Header.Set(HeaderID, id)
	msg.Header.Set(HeaderKind, kind)
	return msg
}

func (t *Timers) publish(ctx context.Context, msg *nats.Msg) error {
	if _, err := t.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("timers: schedule %s: %w", msg.Subject, err)
	}
	return nil
}

// Cancel removes the pending schedule of id and a fired copy not yet
// acknowledged. A firing already handed to a handler can still complete.
// Cancelling an unknown id is not an error.
func (t *Timers) Cancel(ctx context.Context, id string) error {
	if !validToken(id) {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	for _, subj := range []string{SchedPrefix + id, FirePrefix + id} {
		if err := t.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return fmt.Errorf("timers: cancel %s: %w", id, err)
		}
	}
	return nil
}

// Run delivers fired timers to fn through a durable consumer until ctx is
// done, then returns nil. A timer is acknowledged (and removed from the
// stream) after fn returns nil; on an error it is redelivered after
// Options.RetryDelay. Delivery is at least once: fn must be idempotent.
func (t *Timers) Run(ctx context.Context, fn func(context.Context, Fired) error) error {
	cons, err := t.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       t.opts.Durable,
		Description:   "jetprop timer handler",
		FilterSubject: FirePrefix + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("timers: create consumer %s: %w", t.opts.Durable, err)
	}
	// Short pulls: a consumer whose node died is noticed in seconds (see
	// events.PullExpiry; this package stays free of events).
	cc, err := cons.Consume(func(m jetstream.Msg) { t.handle(ctx, m, fn) }, jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return fmt.Errorf("timers: consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

func (t *Timers) handle(ctx context.Context, m jetstream.Msg, fn func(context.Context, Fired) error) {
	log := t.opts.Logger.With("subject", m.Subject())
	meta, err := m.Metadata()
	if err != nil {
		log.Error("timers: bad metadata", "err", err)
		return
	}
	if err := fn(ctx, decode(m, meta)); err != nil {
		log.Warn("timers: handler failed, will retry", "err", err, "delivered", meta.NumDelivered)
		if err := m.NakWithDelay(t.opts.RetryDelay); err != nil {
			log.Error("timers: nak", "err", err)
		}
		return
	}
	if err := m.DoubleAck(ctx); err != nil {
		log.Error("timers: ack", "err", err)
		return
	}
	// Fired copies are not needed once handled; keep the stream small.
	if err := t.stream.DeleteMsg(ctx, meta.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Error("timers: delete fired", "err", err)
	}
}

func decode(m jetstream.Msg, meta *jetstream.MsgMetadata) Fired {
	h := m.Headers()
	f := Fired{
		ID:      h.Get(HeaderID),
		Kind:    h.Get(HeaderKind),
		Payload: m.Data(),
		FiredAt: meta.Timestamp,
	}
	if f.ID == "" {
		f.ID = strings.TrimPrefix(m.Subject(), FirePrefix)
	}
	if due, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDue)); err == nil {
		f.Due = due
	}
	if next := h.Get(hdrScheduleNext); next != hdrScheduleNextPurge {
		if n, err := time.Parse(time.RFC3339Nano, next); err == nil {
			f.Next = n
		}
	}
	return f
}

// validToken reports whether s can be one subject token.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}
