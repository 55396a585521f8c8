package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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
	nc *nats.Conn
	js jetstream.JetStream

	mu      sync.Mutex
	streams map[Kind]jetstream.Stream
}

var _ Store = (*JetStream)(nil)

// StreamOptions declares how the event streams are created.
type StreamOptions struct {
	Replicas int // 1 on a single box, 3 in a cluster
}

// NewJetStream creates (idempotently) the event streams and returns a store.
func NewJetStream(ctx context.Context, nc *nats.Conn, opts StreamOptions) (*JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &JetStream{nc: nc, js: js, streams: map[Kind]jetstream.Stream{}}
	for _, k := range Kinds() {
		st, err := js.CreateOrUpdateStream(ctx, streamConfig(k, opts))
		if err != nil {
			return nil, fmt.Errorf("events: create stream %s: %w", k.Stream(), err)
		}
		s.streams[k] = st
	}
	return s, nil
}

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
		ack, err := s.js.PublishMsg(ctx, toMsg(agg, evs[0]), jetstream.WithExpectLastSequencePerSubject(expected))
		if err != nil {
			return 0, mapErr(agg, expected, err)
		}
		return ack.Sequence, nil
	}
	last := expected
	for len(evs) > 0 {
		part := evs[:min(len(evs), MaxAtomicAppend)]
		evs = evs[len(part):]
		seq, err := s.appendBatch(ctx, agg, last, part)
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
			return 0, fmt.Errorf("events: batch publish: %w", err)
		}
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, commit)
	if err != nil {
		return 0, fmt.Errorf("events: batch commit: %w", err)
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

func mapErr(agg Aggregate, expected uint64, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %s, expected %d: %v", ErrConflict, agg, expected, err)
		}
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

// FromMsg rebuilds an envelope from a stored message.
func FromMsg(subject string, h nats.Header, data []byte, seq uint64) (Envelope, error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	kind, id, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return Envelope{}, fmt.Errorf("events: subject %q is not an event subject", subject)
	}
	t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	if err != nil {
		return Envelope{}, fmt.Errorf("events: message %d: bad %s: %w", seq, HeaderTime, err)
	}
	v, _ := strconv.Atoi(h.Get(HeaderVersion))
	return Envelope{
		ID:            h.Get(jetstream.MsgIDHeader),
		Type:          h.Get(HeaderType),
		Aggregate:     Aggregate{Kind: Kind(kind), ID: id},
		Time:          t,
		CausationID:   h.Get(HeaderCausation),
		CorrelationID: h.Get(HeaderCorrelation),
		Version:       v,
		Data:          json.RawMessage(data),
		Seq:           seq,
	}, nil
}

func fromJS(m jetstream.Msg) (Envelope, uint64, error) {
	md, err := m.Metadata()
	if err != nil {
		return Envelope{}, 0, err
	}
	e, err := FromMsg(m.Subject(), m.Headers(), m.Data(), md.Sequence.Stream)
	return e, md.NumPending, err
}

// Load implements Store.
func (s *JetStream) Load(ctx context.Context, agg Aggregate) ([]Envelope, error) {
	if err := agg.Validate(); err != nil {
		return nil, err
	}
	st, err := s.stream(ctx, agg.Kind)
	if err != nil {
		return nil, err
	}
	last, err := st.GetLastMsgForSubject(ctx, agg.Subject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("events: load %s: %w", agg, err)
	}
	// Walk the aggregate's subject with direct gets (next message by
	// subject): no consumer is created, so loads cannot exhaust the
	// stream's consumer limit.
	var out []Envelope
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(agg.Subject()))
		if err != nil {
			return nil, fmt.Errorf("events: load %s at %d: %w", agg, seq, err)
		}
		e, err := FromMsg(m.Subject, m.Header, m.Data, m.Sequence)
		if err != nil {
			return nil, err
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
	return s.read(ctx, kind, startAt(from), last, fn)
}

func startAt(from uint64) jetstream.OrderedConsumerConfig {
	if from <= 1 {
		return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	}
	return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
}

// read delivers messages of an ordered consumer until one with sequence >=
// until, or none is pending.
func (s *JetStream) read(ctx context.Context, kind Kind, cfg jetstream.OrderedConsumerConfig, until uint64, fn func(Envelope) error) error {
	return s.consume(ctx, kind, cfg, func(e Envelope, pending uint64) error {
		if err := fn(e); err != nil {
			return err
		}
		if e.Seq >= until || pending == 0 {
			return errStop
		}
		return nil
	})
}

var errStop = errors.New("stop")

// Subscribe implements Store.
//
// A consumer that fails (a lost connection, a server restart) is created
// again from the event after the last one delivered, with a backoff; only
// fn's errors and ctx end a subscription.
func (s *JetStream) Subscribe(ctx context.Context, kind Kind, from uint64, fn func(Envelope) error) error {
	var fnErr error
	wait := 50 * time.Millisecond
	for {
		err := s.consume(ctx, kind, startAt(from), func(e Envelope, _ uint64) error {
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

// consume runs an ordered consumer and feeds fn until fn returns an error
// (errStop ends cleanly) or ctx is done.
func (s *JetStream) consume(ctx context.Context, kind Kind, cfg jetstream.OrderedConsumerConfig, fn func(Envelope, uint64) error) error {
	cfg.InactiveThreshold = consumerIdle
	cons, err := s.js.OrderedConsumer(ctx, kind.Stream(), cfg)
	if err != nil {
		return fmt.Errorf("events: consumer on %s: %w", kind.Stream(), err)
	}
	defer s.deleteConsumer(kind, cons)
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("events: consume %s: %w", kind.Stream(), err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("events: consume %s: %w", kind.Stream(), err)
		}
		e, pending, err := fromJS(m)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if err := fn(e, pending); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
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
