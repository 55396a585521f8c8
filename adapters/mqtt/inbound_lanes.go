package mqtt

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// lane is a class of device messages with an order of its own.
type lane int

const (
	// laneLiveness: create and alive (heartbeats and last wills). A
	// heartbeat never waits behind a result of its device.
	laneLiveness lane = iota
	// laneWork: results, metrics, module requests and anything else.
	laneWork
	laneCount
)

// item is a message on its way to a worker, with its topic and its
// sequence in EDGE_IN (0 when unknown).
type item struct {
	m     jetstream.Msg
	topic string
	seq   uint64
}

// lanes are Inbound's workers: per lane, Workers queues with one goroutine
// each. A lane's consumer routes every message, on one goroutine in the
// order it is delivered, to the queue of its device: one device's messages
// of a lane are recorded one at a time, in that order.
type lanes struct {
	in     *Inbound
	ctx    context.Context
	cancel context.CancelFunc
	queues [laneCount][]*queue
	next   [laneCount]int      // round robin for messages that name no device
	limits [laneCount]*limiter // each used by its lane's router alone
	wg     sync.WaitGroup
}

// startLanes starts the workers; stop ends them.
func (in *Inbound) startLanes(ctx context.Context) *lanes {
	ctx, cancel := context.WithCancel(ctx)
	ln := &lanes{in: in, ctx: ctx, cancel: cancel}
	ln.limits[laneWork] = newLimiter(in.cfg.WorkLimit, in.cfg.LimitedDevices)
	ln.limits[laneLiveness] = newLimiter(in.cfg.LivenessLimit, in.cfg.LimitedDevices)
	for l := range ln.queues {
		ln.queues[l] = make([]*queue, in.cfg.Workers)
		for i := range ln.queues[l] {
			q := newQueue()
			ln.queues[l][i] = q
			ln.wg.Go(func() { ln.work(q) })
		}
	}
	return ln
}

// stop ends the workers and waits for them; what is still queued is left
// unsettled, for redelivery.
func (ln *lanes) stop() {
	ln.cancel()
	ln.wg.Wait()
}

// router is the message handler of lane l's consumer: it runs on one
// goroutine, in delivery order, and never waits for a worker. Each
// consumer sees every message; one of the other lane is acked unread (the
// other lane's consumer records it). A message over the size bound of its
// kind, or over its device's rate limit, is dropped here, unread: it
// costs no worker, no decoding and no command.
func (ln *lanes) router(l lane) jetstream.MessageHandler {
	return func(m jetstream.Msg) {
		if ln.ctx.Err() != nil {
			return // stopping: left for redelivery
		}
		topic := wire.Topic(m.Subject())
		ml, kind, device := ln.in.laneOf(topic)
		if ml != l {
			_ = m.Ack()
			return
		}
		ln.in.stats.Received.Add(1)
		data := m.Data()
		if err := wire.CheckSize(kind, data); err != nil {
			ln.in.drop(m, IgnoredTooLarge, device, topic, err)
			return
		}
		if device == "" {
			device = namedIn(data)
		}
		at, seq := stored(m)
		if !ln.limits[l].allow(device, at) {
			ln.in.drop(m, IgnoredRateLimited, device, topic, errRateLimited)
			return
		}
		ln.queues[l][ln.worker(l, device)].push(item{m: m, topic: topic, seq: seq})
	}
}

// errRateLimited is the reason logged for a message over its device's
// rate limit.
var errRateLimited = errors.New("over the device's rate limit")

// stored is when EDGE_IN stored m, and its sequence there (now, and 0,
// when m does not say).
func stored(m jetstream.Msg) (time.Time, uint64) {
	md, err := m.Metadata()
	if err != nil {
		return time.Now(), 0
	}
	if md.Timestamp.IsZero() {
		return time.Now(), md.Sequence.Stream
	}
	return md.Timestamp, md.Sequence.Stream
}

// worker is the index of device's worker in lane l. A message that names
// no device (malformed, or Propeller's module request) has no order to
// keep and goes to the next worker in turn.
func (ln *lanes) worker(l lane, device string) int {
	n := len(ln.queues[l])
	if device == "" {
		ln.next[l] = (ln.next[l] + 1) % n
		return ln.next[l]
	}
	return partition(device, n)
}

// partition spreads devices over n workers (FNV-1a, as the dispatcher
// spreads tasks).
func partition(device string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(device))
	return int(h.Sum32() % uint32(n))
}

func (ln *lanes) work(q *queue) {
	for {
		select {
		case <-ln.ctx.Done():
			return
		case <-q.ready:
		}
		for it, ok := q.pop(); ok && ln.ctx.Err() == nil; it, ok = q.pop() {
			ln.in.handle(ln.ctx, it)
		}
	}
}

// laneOf names the lane of a message, its kind (the shared suffix of its
// topic) and the device its topic names ("" on a shared topic). Create
// and alive are the liveness lane's.
func (in *Inbound) laneOf(topic string) (l lane, kind, device string) {
	suffix, err := in.topics.Suffix(topic)
	if err != nil {
		return laneWork, "", ""
	}
	kind, device = wire.SplitOwn(suffix)
	if kind == wire.SuffixAlive || kind == wire.SuffixCreate {
		return laneLiveness, kind, device
	}
	return laneWork, kind, device
}

// namedIn is the device a payload names ("" when it names none or does not
// decode, which Handle then reports). With the device a topic names, it
// is the sender Handle finds, so a device's messages meet in one worker.
func namedIn(data []byte) string {
	var named struct {
		PropletID string `json:"proplet_id"`
	}
	if wire.Decode(data, &named) != nil {
		return ""
	}
	return named.PropletID
}

// queue is one worker's FIFO. It is unbounded so that the consumer's
// goroutine never waits for a busy worker (which would hold up every other
// device's messages behind it); the consumer's MaxAckPending bounds what
// the queues hold together.
type queue struct {
	mu    sync.Mutex
	items []item
	ready chan struct{} // a token while items may be waiting
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) pop() (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return item{}, false
	}
	it := q.items[0]
	q.items[0] = item{}
	q.items = q.items[1:]
	return it, true
}
