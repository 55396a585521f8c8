package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaderGetter reads single messages with JetStream's STREAM.MSG.GET API,
// which, unlike a direct get, only the stream's leader answers in a
// cluster (nats-server's jsMsgGetRequest: the other servers stay silent,
// and every server answers "cluster not available" while the stream has
// no leader). nats.go's Stream.GetMsg uses a direct get whenever the
// stream allows them, so the store sends these requests itself. The API
// takes no batch: one round trip per message.
type leaderGetter struct {
	nc      *nats.Conn
	prefix  string        // the JetStream API prefix, "$JS.API." by default
	timeout time.Duration // for a ctx without a deadline
}

// leaderGetRequest is the body of a STREAM.MSG.GET (JSApiMsgGetRequest).
type leaderGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

// leaderGetResponse is its answer (JSApiMsgGetResponse).
type leaderGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string `json:"subject"`
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs,omitempty"`
		Data     []byte `json:"data,omitempty"`
	} `json:"message,omitempty"`
}

// get sends one request for stream and returns the message the leader
// holds; jetstream.ErrMsgNotFound when there is none.
func (g *leaderGetter) get(ctx context.Context, stream string, req leaderGetRequest) (storedMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return storedMsg{}, err
	}
	reply, err := g.nc.RequestWithContext(ctx, g.prefix+"STREAM.MSG.GET."+stream, body)
	if err != nil {
		return storedMsg{}, fmt.Errorf("events: get from the leader of %s: %w", stream, err)
	}
	var resp leaderGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return storedMsg{}, fmt.Errorf("events: get from the leader of %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return storedMsg{}, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return storedMsg{}, fmt.Errorf("events: get from the leader of %s: %w", stream, resp.Error)
	case resp.Message == nil:
		return storedMsg{}, fmt.Errorf("events: get from the leader of %s: %w", stream, jetstream.ErrInvalidJetStreamResponse)
	}
	m := storedMsg{subject: resp.Message.Subject, seq: resp.Message.Sequence, data: resp.Message.Data}
	if len(resp.Message.Header) > 0 {
		if m.header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return storedMsg{}, fmt.Errorf("events: get from the leader of %s: %w", stream, err)
		}
	}
	return m, nil
}

// LoadLatest implements Store.
//
// It asks the stream leader for the sequence of agg's last event, then
// loads as Load does (batched direct gets, which any replica may answer)
// and keeps that when it reaches the leader's sequence: a replica's copy
// is a prefix of the leader's, so one that reaches it holds it all. Else
// (a replica lagging) it walks agg's subject through the leader, a round
// trip per event. Without a leader it fails: nothing is confirmed then.
func (s *JetStream) LoadLatest(ctx context.Context, agg Aggregate) ([]Envelope, error) {
	if err := agg.Validate(); err != nil {
		return nil, err
	}
	stream := agg.Kind.Stream()
	last, err := s.leader.get(ctx, stream, leaderGetRequest{LastFor: agg.Subject()})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("events: load %s: %w", agg, err)
	}
	evs, err := s.direct(ctx, agg)
	var corrupt *CorruptError
	if err == nil && LastSeqOf(evs) >= last.seq || errors.As(err, &corrupt) {
		return evs, err
	}
	s.lagging.Add(1)
	return s.loadFromLeader(ctx, agg, last.seq)
}

// loadFromLeader walks agg's subject through the stream leader up to the
// sequence until.
func (s *JetStream) loadFromLeader(ctx context.Context, agg Aggregate, until uint64) ([]Envelope, error) {
	var out []Envelope
	for seq := uint64(1); seq <= until; {
		m, err := s.leader.get(ctx, agg.Kind.Stream(), leaderGetRequest{Seq: seq, NextFor: agg.Subject()})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil // the messages left were deleted meanwhile
		}
		if err != nil {
			return nil, loadErr(agg, seq, err)
		}
		e, err := FromMsg(m.subject, m.header, m.data, m.seq)
		if err != nil {
			return nil, s.corrupt(agg.Kind, m.subject, m.header, m.data, m.seq, err)
		}
		out = append(out, e)
		seq = m.seq + 1
	}
	return out, nil
}

// LaggingReads is how many times LoadLatest found that Load's direct
// gets, answered by a replica, missed events the stream leader holds,
// and read them from the leader instead.
func (s *JetStream) LaggingReads() uint64 { return s.lagging.Load() }
