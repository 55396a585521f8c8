package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EdgeLivenessConsumer is the engine's durable consumer of discoveries and
// heartbeats (create and alive) on EdgeStream. With a consumer of their
// own, heartbeats are delivered while results pile up: one consumer
// delivers in stream order and stops at MaxAckPending unsettled messages,
// so a heartbeat stored behind a backlog of results would wait for it.
//
// It reads every message, as EdgeConsumer does, and acks the others
// unread. A filter on the devices' own topics (control.proplet.*.alive)
// would cost more: delivering from a backlog, nats-server matches such a
// filter against every subject of a message block for each message
// (measured with 1,000 devices: 360 µs of CPU per heartbeat against about
// 40 µs without a filter), while a message acked unread costs a few µs.
const EdgeLivenessConsumer = "engine-liveness"

// edgeConsumer is a durable consumer of EDGE_IN and the lane it feeds.
type edgeConsumer struct {
	name string
	lane lane
	cons jetstream.Consumer
}

// openConsumers creates or updates both durable consumers, each reset to
// its ack floor.
func (in *Inbound) openConsumers(ctx context.Context) ([]edgeConsumer, error) {
	work, err := in.openConsumer(ctx, in.consumerConfig(EdgeConsumer))
	if err != nil {
		return nil, err
	}
	cfg, err := in.livenessConfig(ctx, work)
	if err != nil {
		return nil, err
	}
	live, err := in.openConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return []edgeConsumer{{EdgeConsumer, laneWork, work}, {EdgeLivenessConsumer, laneLiveness, live}}, nil
}

func (in *Inbound) consumerConfig(name string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       EdgeAckWait,
		MaxAckPending: in.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

func (in *Inbound) openConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cons, err := in.ports.JetStream.CreateOrUpdateConsumer(ctx, EdgeStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("mqtt: consumer %s: %w", cfg.Durable, err)
	}
	// Messages a crashed engine had fetched but not acked would wait out
	// the ack wait; start again from the ack floor instead (recording a
	// message twice is a no-op).
	if _, err := in.ports.JetStream.ResetConsumer(ctx, EdgeStream, cfg.Durable); err != nil {
		return nil, fmt.Errorf("mqtt: reset consumer %s: %w", cfg.Durable, err)
	}
	return cons, nil
}

// livenessConfig is the liveness consumer's config. It starts where it
// started before (a start position cannot change); a new one starts after
// the work consumer's ack floor, since an engine that recorded everything
// with that one consumer has recorded the heartbeats up to there, else at
// the first message.
func (in *Inbound) livenessConfig(ctx context.Context, work jetstream.Consumer) (jetstream.ConsumerConfig, error) {
	cfg := in.consumerConfig(EdgeLivenessConsumer)
	old, err := in.ports.JetStream.Consumer(ctx, EdgeStream, EdgeLivenessConsumer)
	switch {
	case err == nil:
		if info := old.CachedInfo(); info != nil {
			cfg.DeliverPolicy, cfg.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		}
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if info := work.CachedInfo(); info != nil && info.AckFloor.Stream > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
		}
	default:
		return cfg, fmt.Errorf("mqtt: consumer %s: %w", EdgeLivenessConsumer, err)
	}
	return cfg, nil
}

// progressEvery bounds how often EdgeProgress asks the server: every
// attempt waiting to be replaced asks at each sweep of the dispatcher.
const progressEvery = 100 * time.Millisecond

// edgeProgress is the last answer of EdgeProgress.
type edgeProgress struct {
	mu              sync.Mutex
	at              time.Time
	handled, stored uint64
}

// EdgeProgress reports how far the device messages of EDGE_IN are handled
// (mqtt.Handled): every message up to handled is (the work consumer's ack
// floor; that consumer reads every message, the liveness lane's too, and
// acks each once its commands are written), and stored is the last
// stream sequence it knows of (delivered and pending; messages dropped by
// the stream's limits make it lower, never higher). Answers are reused
// for progressEvery.
func (in *Inbound) EdgeProgress(ctx context.Context) (handled, stored uint64, err error) {
	p := &in.progress
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) < progressEvery {
		return p.handled, p.stored, nil
	}
	c, err := in.ports.JetStream.Consumer(ctx, EdgeStream, EdgeConsumer)
	if err != nil {
		return 0, 0, fmt.Errorf("mqtt: consumer %s: %w", EdgeConsumer, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("mqtt: consumer %s: %w", EdgeConsumer, err)
	}
	handled, stored = info.AckFloor.Stream, info.Delivered.Stream+info.NumPending
	if info.NumPending == 0 && info.NumAckPending == 0 {
		handled = max(handled, info.Delivered.Stream)
	}
	p.at, p.handled, p.stored = time.Now(), handled, stored
	return handled, stored, nil
}
