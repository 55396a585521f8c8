package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// Header names of the envelope's metadata.
const (
	HeaderType        = "Jp-Type"
	HeaderTime        = "Jp-Time"
	HeaderCausation   = "Jp-Causation"
	HeaderCorrelation = "Jp-Correlation"
	HeaderVersion     = "Jp-Version"
)

// JetStream is the Store on NATS JetStream: one stream per kind, one subject
// per aggregate, expected-last-subject-sequence for optimistic concurrency,
// the envelope id as Nats-Msg-Id, atomic batches for multi-event appends.
type JetStream struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	quarantine *Quarantine // nil: a message that is not an event ends a read
	opened     []StreamState
	batches    *batchGetter // nil: Load walks the subject one direct get at a time
	leader     *leaderGetter
	// direct is Load: what LoadLatest tries before the leader (a test
	// puts a replica that lags in its place).
	direct  func(context.Context, Aggregate) ([]Envelope, error)
	lagging atomic.Uint64 // LaggingReads

	mu      sync.Mutex
	streams map[Kind]jetstream.Stream
}

var _ Store = (*JetStream)(nil)

// StreamOptions declares how the event streams are created.
type StreamOptions struct {
	Replicas int // 1 on a single box, 3 in a cluster
}

// JetStreamOption adjusts how the JetStream store behaves.
type JetStreamOption func(*JetStream)

// WithQuarantine has the store record in q every stored message that is
// not an event envelope (a *CorruptError) and skip it in Replay and
// Subscribe, and the event streams it finds damaged when it opens them.
// Load of the message's aggregate still fails. Without a quarantine such a
// message ends Replay and Subscribe with the *CorruptError.
func WithQuarantine(q *Quarantine) JetStreamOption {
	return func(s *JetStream) { s.quarantine = q }
}

// NewJetStream creates (idempotently) the event streams and returns a store.
func NewJetStream(ctx context.Context, nc *nats.Conn, opts StreamOptions, options ...JetStreamOption) (*JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &JetStream{nc: nc, js: js, streams: map[Kind]jetstream.Stream{}, batches: newBatchGetter(nc, js.Options()),
		leader: &leaderGetter{nc: nc, prefix: apiPrefix(js.Options()), timeout: js.Options().DefaultTimeout}}
	s.direct = s.Load
	for _, o := range options {
		o(s)
	}
	var known []string
	for _, k := range Kinds() {
		o, err := s.open(ctx, k, opts)
		if err != nil {
			return nil, err
		}
		s.streams[k] = o.stream
		s.opened = append(s.opened, o.state)
		known = append(known, o.known...)
	}
	if s.quarantine != nil {
		for _, p := range streamProblems(s.opened, known) {
			s.quarantine.AddStream(p)
		}
	}
	return s, nil
}

// opened is one event stream as the store opened it, with the event
// streams its metadata says existed with it.
type opened struct {
	stream jetstream.Stream
	state  StreamState
	known  []string
}

// open creates or updates kind k's stream and tells what it found.
func (s *JetStream) open(ctx context.Context, k Kind, opts StreamOptions) (opened, error) {
	var o opened
	old, err := s.js.Stream(ctx, k.Stream())
	missing := errors.Is(err, jetstream.ErrStreamNotFound)
	if err != nil && !missing {
		return o, fmt.Errorf("events: stream %s: %w", k.Stream(), err)
	}
	if !missing {
		if m := old.CachedInfo().Config.Metadata[metaStreams]; m != "" {
			o.known = strings.Split(m, ",")
		}
	}
	if o.stream, err = s.js.CreateOrUpdateStream(ctx, streamConfig(k, opts)); err != nil {
		return o, fmt.Errorf("events: create stream %s: %w", k.Stream(), err)
	}
	st := o.stream.CachedInfo().State
	o.state = StreamState{Stream: k.Stream(), Created: missing, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Messages: st.Msgs}
	return o, nil
}

// Opened returns what the store found in each event stream when it opened
// it, in Kinds order.
func (s *JetStream) Opened() []StreamState { return slices.Clone(s.opened) }

func streamConfig(k Kind, opts StreamOptions) jetstream.StreamConfig {
	r := opts.Replicas
	if r == 0 {
		r = 1
	}
	return jetstream.StreamConfig{
		Name:               k.Stream(),
		Description:        "jetprop " + string(k) + " events",
		Subjects:           []string{k.Subjects()},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Replicas:           r,
		Duplicates:         2 * time.Minute,
		AllowAtomicPublish: true,
		AllowDirect:        true,
		Metadata:           map[string]string{metaStreams: eventStreams()},
	}
}

func (s *JetStream) stream(ctx context.Context, k Kind) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.streams[k]; ok {
		return st, nil
	}
	st, err := s.js.Stream(ctx, k.Stream())
	if err != nil {
		return nil, fmt.Errorf("events: stream %s: %w", k.Stream(), err)
	}
	s.streams[k] = st
	return st, nil
}

// Append implements Store.
func (s *JetStream) Append(ctx context.Context, agg Aggregate, expected uint64, evs ...Envelope) (uint64, error) {
	if err := checkAppend(agg, evs); err != nil {
		return 0, err
	}
	if len(evs) == 1 {
		return s.retried(ctx, agg, evs[0].ID, func(ctx context.Context) (uint64, error) {
			ack, err := s.js.PublishMsg(ctx, toMsg(agg, evs[0]), jetstream.WithExpectLastSequencePerSubject(expected))
			if err != nil {
				return 0, mapErr(agg, expected, err)
			}
			return ack.Sequence, nil
		})
	}
	last := expected
	for len(evs) > 0 {
		part := evs[:min(len(evs), MaxAtomicAppend)]
		evs = evs[len(part):]
		seq, err := s.retried(ctx, agg, part[len(part)-1].ID, func(ctx context.Context) (uint64, error) {
			return s.appendBatch(ctx, agg, last, part)
		})
		if err != nil {
			if last != expected {
				return 0, fmt.Errorf("events: %s: appended a prefix only (up to sequence %d): %w", agg, last, err)
			}
			return 0, err
		}
		last = seq
	}
	return last, nil
}

// appendBatch uses JetStream's atomic batch publish: all or nothing.
func (s *JetStream) appendBatch(ctx context.Context, agg Aggregate, expected uint64, evs []Envelope) (uint64, error) {
	batchID := ulid.Make().String()
	var commit *nats.Msg
	for i, e := range evs {
		m := toMsg(agg, e)
		m.Header.Set("Nats-Batch-Id", batchID)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected, 10))
		}
		if i == len(evs)-1 {
			m.Header.Set("Nats-Batch-Commit", "1")
			commit = m
			break
		}
		if err := s.nc.PublishMsg(m); err != nil {
			return 0, fmt.Errorf("events: batch publish: %w", mapErr(agg, expected, err))
		}
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, commit)
	if err != nil {
		return 0, fmt.Errorf("events: batch commit: %w", mapErr(agg, expected, err))
	}
	var ack struct {
		Seq   uint64              `json:"seq"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("events: batch ack: %w", err)
	}
	if ack.Error != nil {
		return 0, mapErr(agg, expected, ack.Error)
	}
	return ack.Seq, nil
}

// errCodeMessageTooLarge is nats-server's JSStreamMessageExceedsMaximumErr:
// a message over the stream's max_msg_size.
const errCodeMessageTooLarge jetstream.ErrorCode = 10054

func mapErr(agg Aggregate, expected uint64, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %s, expected %d: %v", ErrConflict, agg, expected, err)
		case errCodeMessageTooLarge:
			return fmt.Errorf("%w: append to %s: %v", ErrTooLarge, agg, err)
		}
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return fmt.Errorf("%w: append to %s: %v", ErrTooLarge, agg, err)
	}
	return fmt.Errorf("events: append to %s: %w", agg, err)
}

func toMsg(agg Aggregate, e Envelope) *nats.Msg {
	m := nats.NewMsg(agg.Subject())
	m.Data = e.Data
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Header.Set(HeaderType, e.Type)
	m.Header.Set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	m.Header.Set(HeaderVersion, strconv.Itoa(e.Version))
	if e.CausationID != "" {
		m.Header.Set(HeaderCausation, e.CausationID)
	}
	if e.CorrelationID != "" {
		m.Header.Set(HeaderCorrelation, e.CorrelationID)
	}
	return m
}

// FromMsg rebuilds an envelope from a stored message. A message without
// an event subject, a type, an id or a time is not an event.
func FromMsg(subject string, h nats.Header, data []byte, seq uint64) (Envelope, error) {
	agg, ok := aggregateOf(subject)
	if !ok {
		return Envelope{}, fmt.Errorf("events: subject %q is not an event subject", subject)
	}
	for _, name := range []string{HeaderType, jetstream.MsgIDHeader} {
		if h.Get(name) == "" {
			return Envelope{}, fmt.Errorf("events: message %d: no %s header", seq, name)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	if err != nil {
		return Envelope{}, fmt.Errorf("events: message %d: bad %s: %w", seq, HeaderTime, err)
	}
	v, _ := strconv.Atoi(h.Get(HeaderVersion))
	return Envelope{
		ID:            h.Get(jetstream.MsgIDHeader),
		Type:          h.Get(HeaderType),
		Aggregate:     agg,
		Time:          t,
		CausationID:   h.Get(HeaderCausation),
		CorrelationID: h.Get(HeaderCorrelation),
		Version:       v,
		Data:          json.RawMessage(data),
		Seq:           seq,
	}, nil
}

// corrupt returns the *CorruptError of a stored message of kind's stream
// that FromMsg refused with err, and records it in the quarantine.
func (s *JetStream) corrupt(kind Kind, subject string, h nats.Header, data []byte, seq uint64, err error) error {
	c := &CorruptError{Message: NewQuarantined(kind, subject, h, data, seq, err), Err: err}
	if s.quarantine != nil {
		s.quarantine.Add(c.Message)
	}
	return c
}

// Load implements Store.
//
// It reads the aggregate's subject with batched direct gets: one round trip
// for up to DefaultLoadBatch events, no consumer (loads cannot exhaust the
// stream's consumer limit). On a stream without direct get, or a server
// without batches, it walks the subject one message at a time.
func (s *JetStream) Load(ctx context.Context, agg Aggregate) ([]Envelope, error) {
	if err := agg.Validate(); err != nil {
		return nil, err
	}
	st, err := s.stream(ctx, agg.Kind)
	if err != nil {
		return nil, err
	}
	if info := st.CachedInfo(); s.batches != nil && info != nil && info.Config.AllowDirect {
		evs, err := s.loadBatched(ctx, agg)
		if !errors.Is(err, errNoBatch) {
			return evs, err
		}
	}
	return s.loadWalk(ctx, st, agg)
}

// loadBatched reads agg's events a batch at a time until the server says
// none is left. An aggregate with no events is nil, nil.
func (s *JetStream) loadBatched(ctx context.Context, agg Aggregate) ([]Envelope, error) {
	var out []Envelope
	for seq := uint64(1); ; {
		b, err := s.batches.get(ctx, agg.Kind.Stream(), agg.Subject(), seq)
		if err != nil {
			return nil, loadErr(agg, seq, err)
		}
		for _, m := range b.msgs {
			e, err := FromMsg(m.subject, m.header, m.data, m.seq)
			if err != nil {
				return nil, s.corrupt(agg.Kind, m.subject, m.header, m.data, m.seq, err)
			}
			out = append(out, e)
		}
		// Not found after a first batch: the messages it counted as
		// pending are gone (deleted meanwhile), the history ends before.
		if !b.found || b.pending == 0 {
			return out, nil
		}
		seq = b.last + 1
	}
}

func loadErr(agg Aggregate, seq uint64, err error) error {
	if seq == 1 {
		return fmt.Errorf("events: load %s: %w", agg, err)
	}
	return fmt.Errorf("events: load %s at %d: %w", agg, seq, err)
}

// loadWalk reads the last sequence of agg's subject, then walks the subject
// with direct gets (next message by subject) up to it: 1 + N round trips.
func (s *JetStream) loadWalk(ctx context.Context, st jetstream.Stream, agg Aggregate) ([]Envelope, error) {
	last, err := st.GetLastMsgForSubject(ctx, agg.Subject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("events: load %s: %w", agg, err)
	}
	var out []Envelope
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(agg.Subject()))
		if err != nil {
			return nil, fmt.Errorf("events: load %s at %d: %w", agg, seq, err)
		}
		e, err := FromMsg(m.Subject, m.Header, m.Data, m.Sequence)
		if err != nil {
			return nil, s.corrupt(agg.Kind, m.Subject, m.Header, m.Data, m.Sequence, err)
		}
		out = append(out, e)
		if m.Sequence >= last.Sequence {
			return out, nil
		}
		seq = m.Sequence + 1
	}
}

// Version implements Store.
func (s *JetStream) Version(ctx context.Context, agg Aggregate) (uint64, error) {
	if err := agg.Validate(); err != nil {
		return 0, err
	}
	st, err := s.stream(ctx, agg.Kind)
	if err != nil {
		return 0, err
	}
	last, err := st.GetLastMsgForSubject(ctx, agg.Subject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("events: version of %s: %w", agg, err)
	}
	return last.Sequence, nil
}

// LastSeq implements Store.
func (s *JetStream) LastSeq(ctx context.Context, kind Kind) (uint64, error) {
	st, err := s.stream(ctx, kind)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: stream info %s: %w", kind.Stream(), err)
	}
	return info.State.LastSeq, nil
}

// Replay implements Store.
func (s *JetStream) Replay(ctx context.Context, kind Kind, from uint64, fn func(Envelope) error) error {
	last, err := s.LastSeq(ctx, kind)
	if err != nil || last < max(from, 1) {
		return err
	}
	return s.consume(ctx, kind, startAt(from), last, fn)
}

func startAt(from uint64) jetstream.OrderedConsumerConfig {
	if from <= 1 {
		return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	}
	return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
}

// Subscribe implements Store.
//
// A consumer that fails (a lost connection, a server restart) is created
// again from the event after the last one delivered, with a backoff; only
// fn's errors, a message that is not an event (without a quarantine) and
// ctx end a subscription.
func (s *JetStream) Subscribe(ctx context.Context, kind Kind, from uint64, fn func(Envelope) error) error {
	var fnErr error
	wait := 50 * time.Millisecond
	for {
		err := s.consume(ctx, kind, startAt(from), 0, func(e Envelope) error {
			if fnErr = fn(e); fnErr != nil {
				return fnErr
			}
			from, wait = e.Seq+1, 50*time.Millisecond
			return nil
		})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case fnErr != nil:
			return fnErr
		case err == nil, errors.Is(err, ErrCorrupt):
			return err
		}
		select { // the consumer failed: create it again after a pause
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
			wait = min(2*wait, 5*time.Second)
		}
	}
}

// PullExpiry is how long a pull request of the engine's consumers waits
// for messages; the server sends a heartbeat every half of it, and the
// client takes two missed heartbeats for a consumer lost (its node died,
// its stream's leader moved) and makes it again. nats.go's defaults (30 s,
// heartbeats every 5 s for an ordered consumer, 15 s for a durable one)
// left a read model or the device messages 10 to 30 s behind after a node
// of a cluster died.
const PullExpiry = 2 * time.Second

// consume runs an ordered consumer and feeds fn the events it delivers
// until fn returns an error or ctx is done. With until > 0 it is a replay:
// it ends after the message at sequence until or the last one pending, and
// at once when the consumer has nothing to deliver (a stream emptied by a
// purge still has a last sequence, but no message will ever come).
func (s *JetStream) consume(ctx context.Context, kind Kind, cfg jetstream.OrderedConsumerConfig, until uint64, fn func(Envelope) error) error {
	cfg.InactiveThreshold = consumerIdle
	cons, err := s.js.OrderedConsumer(ctx, kind.Stream(), cfg)
	if err != nil {
		return fmt.Errorf("events: consumer on %s: %w", kind.Stream(), err)
	}
	defer s.deleteConsumer(kind, cons)
	it, err := cons.Messages(jetstream.PullMaxMessages(1024), jetstream.PullExpiry(PullExpiry))
	if err != nil {
		return fmt.Errorf("events: consume %s: %w", kind.Stream(), err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	done := func(after uint64) (bool, error) { return s.replayed(ctx, kind, after, until) }
	if info := cons.CachedInfo(); until > 0 && info != nil && info.NumPending == 0 {
		if fin, err := done(max(cfg.OptStartSeq, 1) - 1); fin || err != nil {
			return err
		}
	}
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("events: consume %s: %w", kind.Stream(), err)
		}
		seq, pending, err := s.deliver(kind, m, fn)
		switch {
		case err != nil:
			return err
		case until > 0 && seq >= until:
			return nil
		case until > 0 && pending == 0:
			if fin, err := done(seq); fin || err != nil {
				return err
			}
		}
	}
}

// replayed reports whether a replay up to until that has delivered up to
// after is done: the consumer has nothing more, and the stream's leader
// holds no message after `after` up to until. On a cluster the consumer
// may read a replica that is behind the leader (one restarted a moment
// ago), which has nothing more to deliver for now although the leader
// does; ending the replay there left a read model short of events the
// leader had acked (an artifact missing at a start, so its task failed
// "not stored"). A stream emptied by a purge keeps its last sequence but
// has no message after it: done.
func (s *JetStream) replayed(ctx context.Context, kind Kind, after, until uint64) (bool, error) {
	m, err := s.leader.get(ctx, kind.Stream(), leaderGetRequest{Seq: after + 1, NextFor: ">"})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	return m.seq > until, nil
}

// deliver hands fn the event m holds and returns m's stream sequence and
// the messages pending after it. A message that is not an event is
// quarantined and skipped, or, without a quarantine, a *CorruptError.
func (s *JetStream) deliver(kind Kind, m jetstream.Msg, fn func(Envelope) error) (seq, pending uint64, err error) {
	md, err := m.Metadata()
	if err != nil {
		return 0, 0, fmt.Errorf("events: consume %s: %w", kind.Stream(), err)
	}
	seq, pending = md.Sequence.Stream, md.NumPending
	e, err := FromMsg(m.Subject(), m.Headers(), m.Data(), seq)
	if err != nil {
		if err = s.corrupt(kind, m.Subject(), m.Headers(), m.Data(), seq, err); s.quarantine != nil {
			err = nil
		}
		return seq, pending, err
	}
	return seq, pending, fn(e)
}

// consumerIdle is how long the server keeps an ordered consumer nobody reads.
const consumerIdle = 30 * time.Second

// deleteConsumer removes a finished ordered consumer at once instead of
// leaving it to the idle timeout (streams allow 1,000 consumers by default).
func (s *JetStream) deleteConsumer(kind Kind, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, kind.Stream(), info.Name) // best effort: the idle timeout removes it otherwise
}
