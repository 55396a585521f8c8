package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
)

// EdgeStream is the stream capturing device messages.
const EdgeStream = "EDGE_IN"

// EdgeConsumer is the engine's durable consumer on EdgeStream. It records
// every message but those EdgeLivenessConsumer records, which it acks
// unread.
const EdgeConsumer = "engine"

// Bounds of EDGE_IN (docs/limits.md). The stream keeps what devices sent
// for EdgeMaxAge after it is recorded; these bound what a flood leaves in
// it, so that it cannot fill the store the engine's events share.
const (
	// EdgeMaxAge is how long EDGE_IN keeps a message.
	EdgeMaxAge = 72 * time.Hour
	// EdgeMaxPerSubject bounds the messages EDGE_IN keeps per subject: a
	// device's own topic of one kind (its results, its heartbeats), or a
	// shared topic of Propeller's. Past it the subject's oldest message
	// goes, long recorded unless the engine is this far behind on that
	// subject: a flooding device evicts only its own messages.
	EdgeMaxPerSubject = 100_000
	// DefaultEdgeMaxBytes is the default of InboundConfig.MaxBytes for
	// the server jetprop embeds: a quarter of its store. Past it the
	// oldest messages go, whoever sent them.
	DefaultEdgeMaxBytes = 4 << 30
)

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
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxAge:            EdgeMaxAge,
		MaxMsgsPerSubject: EdgeMaxPerSubject,
		Replicas:          max(replicas, 1),
	}
}

// Commands is what Inbound needs of the engine.
type Commands interface {
	Task(ctx context.Context, cmd engine.TaskCommand) (engine.Task, error)
	Device(ctx context.Context, cmd engine.DeviceCommand) (engine.Device, error)
}

// Interrupts records results their devices marked interrupted: the
// attempt is lost and the task tried again (the service's
// RecordInterrupted, which picks the next device).
type Interrupts interface {
	RecordInterrupted(ctx context.Context, cmd engine.RecordResult) (engine.Task, error)
}

// Seer is told of every sign of life from a device (liveness tracking).
type Seer interface {
	Seen(id string)
	Gone(id string)
}

// EdgeJetStream is what Inbound needs of JetStream (a jetstream.JetStream
// has it): the capture stream, its durable consumers (looked up, created or
// updated), and a reset of a consumer to its ack floor.
type EdgeJetStream interface {
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	Consumer(ctx context.Context, stream, consumer string) (jetstream.Consumer, error)
	CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error)
	ResetConsumer(ctx context.Context, stream, consumer string) (*jetstream.ConsumerResetResponse, error)
}

var _ EdgeJetStream = jetstream.JetStream(nil)

// Notifier sends a manager message without waiting for the broker (QoS
// 0; an *outbound.Publisher).
type Notifier interface {
	Notify(ctx context.Context, suffix string, v any) error
}

// InboundPorts are what Inbound reads from and records with.
type InboundPorts struct {
	JetStream EdgeJetStream
	Commands  Commands
	Seer      Seer
	// Devices and Acks acknowledge results (wire.ResultAck) to the devices
	// on their own topics that accept starts; either nil sends none.
	Devices DeviceReader
	Acks    Notifier
	// Interrupts records interrupted results; nil records them as
	// failures.
	Interrupts Interrupts
	// ModuleRequests handles registry/proplet requests (module delivery);
	// nil counts them as ignored.
	ModuleRequests func(ctx context.Context, req wire.ModuleRequest) error
	// Refusals, when set, are the command handler's counts of refusals
	// decided again on the stream leader's state (a *service.Handler has
	// them), reported with the inbound counters.
	Refusals interface{ Refusals() service.Refusals }
}

// Defaults of InboundConfig.
const (
	// DefaultInboundWorkers is how many workers each lane has: the devices
	// are spread over them by a hash of their ids.
	DefaultInboundWorkers = 16
	// DefaultEdgeMaxAckPending bounds the messages each consumer has
	// delivered to Inbound and that are not settled yet.
	DefaultEdgeMaxAckPending = 8192
	// EdgeAckWait is how long a consumer waits for a settlement before it
	// delivers a message again.
	EdgeAckWait = 30 * time.Second
)

// InboundConfig declares the capture stream and how Inbound consumes it.
type InboundConfig struct {
	Topics   wire.Topics // the deployment's topics, captured into EDGE_IN
	Replicas int         // of EDGE_IN (default 1)
	// Workers per lane (default DefaultInboundWorkers). The messages of one
	// device go to one worker of each lane, in the order EDGE_IN holds
	// them; 1 records the messages of each lane one at a time.
	Workers int
	// MaxAckPending of each durable consumer (default
	// DefaultEdgeMaxAckPending): its messages in flight, queued or being
	// recorded.
	MaxAckPending int
	// Now is the time a heartbeat arrives at (default time.Now): an
	// unreachable device heartbeating long enough is given another chance
	// (engine.UnreachableRetry).
	Now func() time.Time
	// MaxBytes bounds EDGE_IN's size (0: no bound but EdgeMaxAge and
	// EdgeMaxPerSubject). The server reserves it from its store.
	MaxBytes int64
	// WorkLimit is each device's rate limit of results, accepts, metrics,
	// module requests and other topics (default DefaultWorkRate and
	// DefaultWorkBurst); LivenessLimit of discoveries, heartbeats and
	// last wills (default DefaultLivenessRate and DefaultLivenessBurst).
	// The time of a message is when EDGE_IN stored it. Each engine
	// replica counts the messages it records.
	WorkLimit, LivenessLimit RateLimit
	// LimitedDevices bounds the buckets each lane keeps (default
	// DefaultLimitedDevices).
	LimitedDevices int
}

func (c *InboundConfig) setDefaults() {
	c.Replicas = max(c.Replicas, 1)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Workers <= 0 {
		c.Workers = DefaultInboundWorkers
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultEdgeMaxAckPending
	}
	c.WorkLimit = c.WorkLimit.orDefault(RateLimit{Rate: DefaultWorkRate, Burst: DefaultWorkBurst})
	c.LivenessLimit = c.LivenessLimit.orDefault(RateLimit{Rate: DefaultLivenessRate, Burst: DefaultLivenessBurst})
	c.LimitedDevices = cmp.Or(c.LimitedDevices, DefaultLimitedDevices)
}

// Inbound consumes EDGE_IN and records what devices said. It has two lanes,
// each with a durable consumer of its own and Workers workers
// (inbound_consumers.go, inbound_lanes.go): liveness (create and alive) and
// work (everything else). Within a lane a message goes to the worker its
// device hashes to, so the messages of one device keep their order in each
// lane while devices proceed in parallel, and a heartbeat never waits
// behind a result, neither for delivery nor for a worker.
type Inbound struct {
	ports  InboundPorts
	topics wire.Topics
	cfg    InboundConfig
	log    *slog.Logger
	stats  Stats
	once   onceLog // result acks not sent, by device
	rate   rateLog // messages dropped, by reason

	progress edgeProgress // EdgeProgress's last answer
}

// NewInbound creates the capture stream and its durable consumer.
func NewInbound(ctx context.Context, ports InboundPorts, cfg InboundConfig, log *slog.Logger) (*Inbound, error) {
	cfg.setDefaults()
	stream := EdgeStreamConfig(cfg.Topics, cfg.Replicas)
	stream.MaxBytes = max(cfg.MaxBytes, 0) // 0: none
	if _, err := ports.JetStream.CreateOrUpdateStream(ctx, stream); err != nil {
		return nil, fmt.Errorf("mqtt: create stream %s: %w", EdgeStream, err)
	}
	return &Inbound{ports: ports, topics: cfg.Topics, cfg: cfg, log: log, rate: rateLog{every: DefaultProblemLogEvery}}, nil
}

// Dropped returns the devices with the most messages dropped unread
// (too large, rate limited), at most MaxDroppedShown, most first.
func (in *Inbound) Dropped() []DeviceDrops { return in.stats.dropped.top(MaxDroppedShown) }

// Stats returns the inbound counters.
func (in *Inbound) Stats() Snapshot {
	s := in.stats.Snapshot()
	if in.ports.Refusals != nil {
		s.Refusals = in.ports.Refusals.Refusals()
	}
	return s
}

// Run consumes until ctx is done. Messages still queued then are left
// unsettled: the next start delivers them again (from the ack floor).
func (in *Inbound) Run(ctx context.Context) error {
	consumers, err := in.openConsumers(ctx)
	if err != nil {
		return err
	}
	ln := in.startLanes(ctx)
	defer ln.stop()
	var running []jetstream.ConsumeContext
	defer func() {
		for _, cc := range running {
			cc.Drain()
		}
		for _, cc := range running {
			<-cc.Closed()
		}
	}()
	for _, c := range consumers {
		cc, err := c.cons.Consume(ln.router(c.lane), jetstream.PullMaxMessages(1024), jetstream.PullExpiry(events.PullExpiry))
		if err != nil {
			return fmt.Errorf("mqtt: consume %s/%s: %w", EdgeStream, c.name, err)
		}
		running = append(running, cc)
	}
	<-ctx.Done()
	return nil
}

// handle records one message and settles it. Messages are settled one by
// one (explicit acks), in whatever order the workers finish them. A
// message is acked unrecorded only when it is malformed or refused for
// good, and a refusal reaches here only once the command handler decided
// it on the stream leader's state; an error of any other kind (the
// leader out of reach included) leaves it for redelivery.
func (in *Inbound) handle(ctx context.Context, it item) {
	m, topic := it.m, it.topic
	var causation string
	if it.seq != 0 {
		causation = EdgeStream + ":" + strconv.FormatUint(it.seq, 10)
	}
	err := in.Handle(service.WithCause(ctx, causation, ""), topic, m.Data())
	switch {
	case err == nil:
		in.stats.Recorded.Add(1)
	case errors.Is(err, wire.ErrTooLarge), errors.Is(err, domain.ErrMetadataTooLarge):
		in.drop(m, IgnoredTooLarge, in.senderOf(topic, m.Data()), topic, err)
		return
	case errors.Is(err, wire.ErrInvalid), errors.Is(err, wire.ErrBadTopic), errors.Is(err, domain.ErrInvalid):
		n := in.stats.Malformed.Add(1)
		in.rate.log(in.log, in.cfg.Now(), "malformed", n, "malformed device message", "topic", topic, "err", err)
	case refusedForGood(err), errors.Is(err, errIgnored):
		reason := ignoredReason(err)
		n := in.stats.ignore(reason)
		in.rate.log(in.log, in.cfg.Now(), reason, n, "device message ignored", "reason", reason, "topic", topic, "err", err)
	case ctx.Err() != nil:
		return // shutting down: the message stays unacked, and comes again after the restart
	default:
		in.stats.Retried.Add(1)
		in.log.Error("recording device message failed; will retry", "topic", topic, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}

// drop acks a message dropped for reason (IgnoredTooLarge,
// IgnoredRateLimited) and counts it, by reason and by device.
func (in *Inbound) drop(m jetstream.Msg, reason, device, topic string, err error) {
	n := in.stats.ignore(reason)
	in.stats.dropped.add(device, reason)
	in.rate.log(in.log, in.cfg.Now(), reason, n, "device message dropped", "reason", reason, "device", device, "topic", topic, "bytes", len(m.Data()), "err", err)
	_ = m.Ack()
}

// senderOf is the device a message is from, as far as its topic, or its
// payload on a shared topic, says.
func (in *Inbound) senderOf(topic string, data []byte) string {
	if _, _, device := in.laneOf(topic); device != "" {
		return device
	}
	return namedIn(data)
}

var errIgnored = errors.New("not handled")

// errNotPlaced marks a stale refusal of the current attempt of a task,
// from a device the attempt is not placed on.
var errNotPlaced = errors.New("not the device the attempt is placed on")

// ignoredReason is the reason a message refused for good is counted under.
func ignoredReason(err error) string {
	switch {
	case errors.Is(err, errIgnored):
		return IgnoredUnhandled
	case errors.Is(err, domain.ErrQuarantined):
		return IgnoredQuarantined
	case errors.Is(err, errNotPlaced):
		return IgnoredNotPlaced
	case errors.Is(err, domain.ErrStale):
		return IgnoredStale
	case errors.Is(err, domain.ErrInvalidState):
		return IgnoredRevoked
	}
	return IgnoredUnknown
}

// placedElsewhere marks a stale refusal of task t's current attempt as
// one from a device the attempt is not placed on.
func placedElsewhere(err error, t engine.Task, attempt int, device string) error {
	if errors.Is(err, domain.ErrStale) && t.State.Active() && (attempt == 0 || attempt == t.Attempt) && device != t.Device {
		return fmt.Errorf("%w: %w", errNotPlaced, err)
	}
	return err
}

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
	case wire.SuffixAccepted:
		if device == "" {
			break // accepts count on a device's own topics only, where the topic proves the sender
		}
		return in.accepted(ctx, device, data)
	case wire.SuffixTaskMetrics:
		_, err := wire.DecodeTaskMetrics(data)
		return err
	case wire.SuffixMetrics:
		_, err := wire.DecodePropletMetrics(data)
		return err
	case wire.SuffixModuleRequest:
		return in.moduleRequest(ctx, device, data)
	case wire.SuffixInvokeResults:
		// Answered on core NATS by the replica that waits (Invoker); the
		// copy EDGE_IN keeps is only checked here.
		_, err := wire.DecodeInvokeResult(data)
		return err
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
	cmd := engine.Announce{ID: id, Namespace: d.Namespace, Metadata: domain.DeviceMetadata(d.Metadata), OwnTopics: device != "", Accepts: d.Accepts}
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
		_, err := in.ports.Commands.Device(ctx, engine.MarkOffline{ID: id, Reason: "last will: connection lost", LastWill: true})
		return err
	}
	beat := engine.Heartbeat{ID: id, Namespace: a.Namespace, OwnTopics: device != "", At: in.cfg.Now()}
	if a.Status == wire.StatusUnreachable {
		beat.At = time.Time{} // up, but not a sign that it receives
	}
	if _, err := in.ports.Commands.Device(ctx, beat); err != nil {
		return err
	}
	if a.Status == wire.StatusUnreachable {
		reason := "the proplet says it cannot receive: " + a.Reason
		if _, err := in.ports.Commands.Device(ctx, engine.MarkUnreachable{ID: id, Reason: reason}); err != nil {
			return err
		}
	}
	in.ports.Seer.Seen(id)
	return nil
}

// accepted records that a device took the start of an attempt: the
// attempt runs, and a device that was unreachable receives again.
func (in *Inbound) accepted(ctx context.Context, device string, data []byte) error {
	a, err := wire.DecodeAccepted(data)
	if err != nil {
		return err
	}
	if _, err := sender(device, a.PropletID); err != nil {
		return err
	}
	if _, err := in.ports.Commands.Device(ctx, engine.MarkReachable{ID: device}); err != nil {
		return err
	}
	t, err := in.ports.Commands.Task(ctx, engine.MarkStarted{ID: a.TaskID, Attempt: a.Attempt, Device: device})
	return placedElsewhere(err, t, a.Attempt, device)
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
	cmd := engine.RecordResult{ID: r.TaskID, Device: id, Attempt: r.Attempt, Result: r.Results, Error: string(r.Error)}
	var t engine.Task
	if r.Interrupted && r.Failed() && in.ports.Interrupts != nil {
		t, err = in.ports.Interrupts.RecordInterrupted(ctx, cmd)
	} else {
		t, err = in.ports.Commands.Task(ctx, cmd)
	}
	if settled(err) {
		in.ackResult(ctx, device, r)
	}
	return placedElsewhere(err, t, r.Attempt, id)
}

// refusedForGood reports whether the engine refused a device message in a
// way retrying cannot change: an unknown aggregate, a stale attempt, a
// revoked device (the only invalid state a device message meets), or one
// quarantined until an operator acts. The handler returns a refusal only
// once the stream leader's state confirmed it.
func refusedForGood(err error) bool {
	return errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrStale) ||
		errors.Is(err, domain.ErrInvalidState) || errors.Is(err, domain.ErrQuarantined)
}

// settled reports whether a result is done with: recorded (or a no-op
// duplicate), or refused for good. Not when recording failed otherwise:
// the message is delivered again, and acked then.
func settled(err error) bool { return err == nil || refusedForGood(err) }

// ackResult tells a device on its own topics that accepts starts that its
// result is settled, so it stops sending it again. The ack goes at QoS 0,
// without waiting for the broker: one that is lost is answered by the
// device's next copy of the result.
func (in *Inbound) ackResult(ctx context.Context, device string, r wire.Result) {
	if device == "" || r.Attempt <= 0 || in.ports.Acks == nil || in.ports.Devices == nil {
		return
	}
	if dev, ok := in.ports.Devices.Get(device); !ok || !dev.AnswersStarts() {
		return
	}
	ack := wire.ResultAck{TaskID: r.TaskID, Attempt: r.Attempt}
	if err := in.ports.Acks.Notify(ctx, wire.OwnTopic(wire.SuffixResultAck, device), ack); err != nil {
		in.stats.ResultAckErrors.Add(1)
		in.once.log(in.log, "result ack "+device, "result ack not sent; the device sends the result again", "device", device, "err", err)
		return
	}
	in.stats.ResultAcks.Add(1)
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
