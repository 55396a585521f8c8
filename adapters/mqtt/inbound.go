package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
)

// EdgeStream is the stream capturing device messages.
const EdgeStream = "EDGE_IN"

// EdgeConsumer is the engine's durable consumer on EdgeStream.
const EdgeConsumer = "engine"

// EdgeStreamConfig returns the capture stream for one deployment's topics.
func EdgeStreamConfig(t wire.Topics, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EdgeStream,
		Description: "raw messages published by proplets, captured on arrival",
		Subjects: []string{
			wire.Subject(t.Topic("control/proplet/#")),
			wire.Subject(t.Topic(wire.SuffixModuleRequest)),
			wire.Subject(t.Topic(wire.SuffixModuleRequest + "/#")), // a device's own: registry/proplet/<id>
		},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
		MaxAge:    72 * time.Hour,
		Replicas:  max(replicas, 1),
	}
}

// Commands is what Inbound needs of the engine.
type Commands interface {
	Task(ctx context.Context, cmd engine.TaskCommand) (engine.Task, error)
	Device(ctx context.Context, cmd engine.DeviceCommand) (engine.Device, error)
}

// Seer is told of every sign of life from a device (liveness tracking).
type Seer interface {
	Seen(id string)
	Gone(id string)
}

// EdgeJetStream is what Inbound needs of JetStream (a jetstream.JetStream
// has it): the capture stream, its durable consumer, and a reset of that
// consumer to its ack floor.
type EdgeJetStream interface {
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error)
	ResetConsumer(ctx context.Context, stream, consumer string) (*jetstream.ConsumerResetResponse, error)
}

var _ EdgeJetStream = jetstream.JetStream(nil)

// InboundPorts are what Inbound reads from and records with.
type InboundPorts struct {
	JetStream EdgeJetStream
	Commands  Commands
	Seer      Seer
	// ModuleRequests handles registry/proplet requests (module delivery);
	// nil counts them as ignored.
	ModuleRequests func(ctx context.Context, req wire.ModuleRequest) error
}

// InboundConfig declares the capture stream.
type InboundConfig struct {
	Topics   wire.Topics // the deployment's topics, captured into EDGE_IN
	Replicas int         // of EDGE_IN (default 1)
}

// Inbound consumes EDGE_IN and records what devices said.
type Inbound struct {
	ports  InboundPorts
	topics wire.Topics
	log    *slog.Logger
	stats  Stats
	once   onceLog
}

// NewInbound creates the capture stream and its durable consumer.
func NewInbound(ctx context.Context, ports InboundPorts, cfg InboundConfig, log *slog.Logger) (*Inbound, error) {
	if _, err := ports.JetStream.CreateOrUpdateStream(ctx, EdgeStreamConfig(cfg.Topics, cfg.Replicas)); err != nil {
		return nil, fmt.Errorf("mqtt: create stream %s: %w", EdgeStream, err)
	}
	return &Inbound{ports: ports, topics: cfg.Topics, log: log}, nil
}

// Stats returns the inbound counters.
func (in *Inbound) Stats() Snapshot { return in.stats.Snapshot() }

// Run consumes until ctx is done.
func (in *Inbound) Run(ctx context.Context) error {
	cons, err := in.ports.JetStream.CreateOrUpdateConsumer(ctx, EdgeStream, jetstream.ConsumerConfig{
		Durable:       EdgeConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("mqtt: consumer %s: %w", EdgeConsumer, err)
	}
	// Messages a crashed engine had fetched but not acked would wait out
	// the ack wait; start again from the ack floor instead (recording a
	// message twice is a no-op).
	if _, err := in.ports.JetStream.ResetConsumer(ctx, EdgeStream, EdgeConsumer); err != nil {
		return fmt.Errorf("mqtt: reset consumer %s: %w", EdgeConsumer, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { in.handle(ctx, m) }, jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("mqtt: consume %s: %w", EdgeStream, err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

func (in *Inbound) handle(ctx context.Context, m jetstream.Msg) {
	in.stats.Received.Add(1)
	topic := wire.Topic(m.Subject())
	var causation string
	if md, err := m.Metadata(); err == nil {
		causation = fmt.Sprintf("%s:%d", EdgeStream, md.Sequence.Stream)
	}
	err := in.Handle(service.WithCause(ctx, causation, ""), topic, m.Data())
	switch {
	case err == nil:
		in.stats.Recorded.Add(1)
	case errors.Is(err, wire.ErrInvalid), errors.Is(err, wire.ErrBadTopic), errors.Is(err, domain.ErrInvalid):
		in.stats.Malformed.Add(1)
		in.once.log(in.log, "malformed "+topic, "malformed device message", "topic", topic, "err", err)
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrStale), errors.Is(err, errIgnored),
		errors.Is(err, domain.ErrQuarantined): // refused until an operator acts: retrying cannot help
		in.stats.Ignored.Add(1)
		in.once.log(in.log, "ignored "+topic, "device message ignored", "topic", topic, "err", err)
	default:
		in.stats.Retried.Add(1)
		in.log.Error("recording device message failed; will retry", "topic", topic, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}

var errIgnored = errors.New("not handled")

// Handle decodes one device message and executes its command. On a
// device's own topic (control/proplet/<id>/..., registry/proplet/<id>) the
// topic names the device, which the broker let publish there alone: a
// payload that names another is refused as malformed.
func (in *Inbound) Handle(ctx context.Context, topic string, data []byte) error {
	suffix, err := in.topics.Suffix(topic)
	if err != nil {
		return err
	}
	shared, device := wire.SplitOwn(suffix)
	switch shared {
	case wire.SuffixCreate:
		return in.discovery(ctx, device, data)
	case wire.SuffixAlive:
		return in.alive(ctx, device, data)
	case wire.SuffixResults:
		return in.result(ctx, device, data)
	case wire.SuffixTaskMetrics:
		_, err := wire.DecodeTaskMetrics(data)
		return err
	case wire.SuffixMetrics:
		_, err := wire.DecodePropletMetrics(data)
		return err
	case wire.SuffixModuleRequest:
		return in.moduleRequest(ctx, device, data)
	}
	return fmt.Errorf("%w: topic %q", errIgnored, topic)
}

// sender is the device a message comes from: the one its topic names, or,
// on a shared topic, the one its payload names.
func sender(device, named string) (string, error) {
	if device != "" && named != "" && named != device {
		return "", fmt.Errorf("%w: proplet_id %q on the topics of %q", wire.ErrInvalid, named, device)
	}
	return cmp.Or(device, named), nil
}

func (in *Inbound) discovery(ctx context.Context, device string, data []byte) error {
	d, err := wire.DecodeDiscovery(data)
	if err != nil {
		return err
	}
	id, err := sender(device, d.PropletID)
	if err != nil {
		return err
	}
	cmd := engine.Announce{ID: id, Namespace: d.Namespace, Metadata: domain.DeviceMetadata(d.Metadata), OwnTopics: device != ""}
	if _, err := in.ports.Commands.Device(ctx, cmd); err != nil {
		return err
	}
	in.ports.Seer.Seen(id)
	return nil
}

func (in *Inbound) alive(ctx context.Context, device string, data []byte) error {
	a, err := wire.DecodeAlive(data)
	if err != nil {
		return err
	}
	id, err := sender(device, a.PropletID)
	if err != nil {
		return err
	}
	if a.Status == wire.StatusOffline {
		in.ports.Seer.Gone(id)
		_, err := in.ports.Commands.Device(ctx, engine.MarkOffline{ID: id, Reason: "last will: connection lost"})
		return err
	}
	if _, err := in.ports.Commands.Device(ctx, engine.Heartbeat{ID: id, Namespace: a.Namespace, OwnTopics: device != ""}); err != nil {
		return err
	}
	in.ports.Seer.Seen(id)
	return nil
}

func (in *Inbound) result(ctx context.Context, device string, data []byte) error {
	r, err := wire.DecodeResult(data)
	if err != nil {
		return err
	}
	id, err := sender(device, r.PropletID)
	if err != nil {
		return err
	}
	_, err = in.ports.Commands.Task(ctx, engine.RecordResult{
		ID: r.TaskID, Device: id, Attempt: r.Attempt, Result: r.Results, Error: string(r.Error),
	})
	return err
}

func (in *Inbound) moduleRequest(ctx context.Context, device string, data []byte) error {
	req, err := wire.DecodeModuleRequest(data)
	if err != nil {
		return err
	}
	if req.PropletID, err = sender(device, req.PropletID); err != nil {
		return err
	}
	if in.ports.ModuleRequests == nil {
		return fmt.Errorf("%w: registry request for %q: module delivery by chunks is not enabled", errIgnored, req.AppName)
	}
	return in.ports.ModuleRequests(ctx, req)
}
