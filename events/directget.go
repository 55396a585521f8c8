package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultLoadBatch is how many messages one batched direct get of Load
// asks for.
const DefaultLoadBatch = 256

// loadBatchBytes caps the bytes of one batch (the server stops after the
// message that reaches it), so that many loads at once stay far below the
// pending limit of the reply subscription they share.
const loadBatchBytes = 1 << 20

// Headers and statuses of JetStream's direct get replies.
const (
	hdrNumPending = "Nats-Num-Pending"
	hdrLastSeq    = "Nats-Last-Sequence"
	hdrStatus     = "Status"
	hdrDesc       = "Description"
	statusEOB     = "204"
	statusNoMsg   = "404"
	statusNoReply = "503"
)

var (
	// errNoBatch: the server answered a batched direct get with a plain
	// one (nats-server < 2.11); Load walks the subject instead.
	errNoBatch = errors.New("events: the server does not support batched direct get")
	// errBatchGap: a reply of a batch was lost (the chain of
	// Nats-Last-Sequence headers is broken).
	errBatchGap = errors.New("events: batched direct get: a reply is missing")
)

// batchGetter reads the messages of one subject with JetStream's batched
// direct get (nats-server >= 2.11): one request to
// <prefix>DIRECT.GET.<stream> with {"seq":s,"next_by_subj":subj,"batch":n}
// is answered by up to n messages of subj from sequence s on, in order,
// then a "204 EOB" status whose Nats-Num-Pending tells how many are left.
// The replies of all requests arrive on one wildcard inbox subscription,
// and each request's reply subject ends with a token of its own.
//
// Clusters: like every direct get, a batch may be served by any replica
// of the stream, one that lags included, so Load may return a prefix of
// the history (an Append built on it fails with ErrConflict; a read shows
// it). That is no worse than the walk it replaces, each of whose gets may
// go to another replica: a batch comes whole from one replica, and only an
// aggregate longer than a batch takes several. A decision that no append
// checks reads with LoadLatest instead (leaderget.go).
type batchGetter struct {
	nc      *nats.Conn
	prefix  string        // the JetStream API prefix, "$JS.API." by default
	timeout time.Duration // for a ctx without a deadline
	size    int           // messages a batch asks for

	mu      sync.Mutex
	inbox   string // "<inbox>.": a reply subject is inbox + token
	sub     *nats.Subscription
	next    uint64
	waiting map[string]chan *nats.Msg
}

func newBatchGetter(nc *nats.Conn, o jetstream.JetStreamOptions) *batchGetter {
	return &batchGetter{nc: nc, prefix: apiPrefix(o), timeout: o.DefaultTimeout, size: DefaultLoadBatch}
}

// apiPrefix is the subject prefix of the JetStream API the options name,
// as jetstream.New, NewWithAPIPrefix and NewWithDomain set it.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix == "":
		return jetstream.DefaultAPIPrefix
	case o.APIPrefix[len(o.APIPrefix)-1] != '.':
		return o.APIPrefix + "."
	}
	return o.APIPrefix
}

// batch is what one batched direct get returned.
type batch struct {
	msgs    []storedMsg
	last    uint64 // stream sequence of the last message, 0 if none
	pending uint64 // messages of the subject after last, at the end of the batch
	found   bool   // false: no message of the subject from the sequence asked on
}

// get sends one batched direct get for subj in stream from seq on and
// collects its replies up to the end of the batch.
func (g *batchGetter) get(ctx context.Context, stream, subj string, seq uint64) (batch, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	reply, ch, err := g.register()
	if err != nil {
		return batch{}, err
	}
	defer g.unregister(reply)
	req, err := json.Marshal(directGetRequest{Seq: seq, NextFor: subj, Batch: g.size, MaxBytes: loadBatchBytes})
	if err != nil {
		return batch{}, err
	}
	if err := g.nc.PublishRequest(g.prefix+"DIRECT.GET."+stream, reply, req); err != nil {
		return batch{}, err
	}
	b := batch{found: true}
	for {
		select {
		case <-ctx.Done():
			return batch{}, ctx.Err()
		case m := <-ch:
			if done, err := b.add(m); done || err != nil {
				return b, err
			}
		}
	}
}

// directGetRequest is the body of a direct get (JSApiMsgGetRequest).
type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// add takes the next reply of the batch and tells whether it ended it.
func (b *batch) add(m *nats.Msg) (done bool, err error) {
	if m.Header.Get(jetstream.SequenceHeader) == "" { // a status of the server
		return true, b.end(m)
	}
	if m.Header.Get(hdrNumPending) == "" {
		return true, errNoBatch
	}
	seq, err1 := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	prev, err2 := strconv.ParseUint(m.Header.Get(hdrLastSeq), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return true, fmt.Errorf("events: batched direct get: %w", err)
	}
	if prev != b.last {
		return true, errBatchGap
	}
	// The headers only a batch has: the envelope and a quarantine record
	// see what a single direct get returns.
	m.Header.Del(hdrNumPending)
	m.Header.Del(hdrLastSeq)
	b.msgs = append(b.msgs, storedMsg{subject: m.Header.Get(jetstream.SubjectHeader), seq: seq, header: m.Header, data: m.Data})
	b.last = seq
	return false, nil
}

// storedMsg is one message of a batch as the stream holds it.
type storedMsg struct {
	subject string
	seq     uint64
	header  nats.Header
	data    []byte
}

// end reads the status that ends a batch.
func (b *batch) end(m *nats.Msg) error {
	switch st := m.Header.Get(hdrStatus); st {
	case statusEOB:
		np, err1 := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
		last, err2 := strconv.ParseUint(m.Header.Get(hdrLastSeq), 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("events: batched direct get: end of batch: %w", err)
		}
		if last != b.last {
			return errBatchGap
		}
		b.pending = np
		return nil
	case statusNoMsg:
		if len(b.msgs) > 0 {
			return errBatchGap
		}
		b.found = false
		return nil
	case statusNoReply:
		return nats.ErrNoResponders
	default:
		return fmt.Errorf("events: batched direct get: status %q %s", st, m.Header.Get(hdrDesc))
	}
}

// register returns a new reply subject and the channel its replies go to:
// room for a whole batch and its end, so delivery never blocks.
func (g *batchGetter) register() (string, chan *nats.Msg, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sub == nil {
		inbox := g.nc.NewInbox() + "."
		sub, err := g.nc.Subscribe(inbox+"*", g.deliver)
		if err != nil {
			return "", nil, fmt.Errorf("events: direct get inbox: %w", err)
		}
		g.inbox, g.sub, g.waiting = inbox, sub, map[string]chan *nats.Msg{}
	}
	g.next++
	reply := g.inbox + strconv.FormatUint(g.next, 36)
	ch := make(chan *nats.Msg, g.size+1)
	g.waiting[reply] = ch
	return reply, ch, nil
}

func (g *batchGetter) unregister(reply string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.waiting, reply)
}

// deliver hands a reply to the request waiting for it; replies to
// requests given up (a cancelled ctx) are dropped.
func (g *batchGetter) deliver(m *nats.Msg) {
	g.mu.Lock()
	ch := g.waiting[m.Subject]
	g.mu.Unlock()
	select {
	case ch <- m: // a nil ch (nobody waits) blocks: the default drops m
	default: // not for a full ch: it has room for every reply of a batch
	}
}
