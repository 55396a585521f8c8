// Package app wires jetprop's server together: the embedded nats-server, the
// event store, projections, the command handler, the MQTT adapters, the HTTP
// API and the local proplets that `jetprop up` starts.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/leases"
	"github.com/jetprop/jetprop/adapters/metrics"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/adapters/timers"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/workers/proplet"
)

// Version is set at build time with -ldflags "-X .../app.Version=...".
var Version = "dev"

// App is a running jetprop server.
type App struct {
	cfg Config
	log *slog.Logger

	ns       *natsserver.Server // nil with an external NATS
	nc       *nats.Conn
	store    *events.JetStream
	appends  *metrics.Appends // the store the handler appends to, its appends counted
	quar     *events.Quarantine
	codec    *events.Codec
	tasks    *projections.Tasks
	devices  *projections.Devices
	arts     *projections.Artifacts
	wfs      *projections.Workflows
	toks     *projections.Tokens
	secs     *projections.Secrets
	snaps    *projections.Snapshots // nil: snapshots off
	restored []projections.Restored
	timers   *timers.Timers
	tcron    *service.TaskCron // cron tasks (Propeller's schedule)
	wfm      *service.WorkflowManager
	handler  *service.Handler
	svc      *service.Service
	modules  *artifacts.Store
	inbound  *mqtt.Inbound
	chunks   *outbound.ChunkServer
	pub      *outbound.Publisher
	invoker  *mqtt.Invoker
	proplets []*proplet.Proplet // the local ones (Config.Proplets)
	liveness *service.Liveness
	leases   *leases.Leases // this replica's share of the dispatching
	observer *mqtt.Observer // every heartbeat, for this replica's liveness
	samples  *mqtt.Samples  // recent metrics of devices and tasks, which the observer keeps
	// latencies of dispatch and results (nil with MetricsOff), the
	// dispatcher that observes them and counts inline module bytes.
	latencies *metrics.Latencies
	disp      *mqtt.Dispatcher
	attempts  *service.AttemptWatch
	resolver  *moduleResolver
	mqttURL   string // where devices connect
	tls       tlsSetup
	// engineMQTT is where the engine's own MQTT connection goes, with its
	// credentials.
	engineMQTT string
	gate       *gate       // the auth callout of the embedded server (nil with an external one)
	revoked    chan string // devices to disconnect
	httpLn     net.Listener
	pprofLn    net.Listener
	pprofSrv   *http.Server
	httpSrv    *http.Server

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	failed chan struct{}
}

// Start brings the server up and returns when it serves requests.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, failed: make(chan struct{})}
	if err := a.start(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) start(ctx context.Context) error {
	tlsc, err := newTLSSetup(a.cfg)
	if err != nil {
		return err
	}
	a.tls = tlsc
	if err := a.connect(ctx); err != nil {
		return err
	}
	if err := a.open(ctx); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.startLoops(runCtx)
	if a.cfg.Auth {
		if err := a.bootstrapToken(ctx); err != nil {
			return err
		}
	}
	if err := a.serveHTTP(); err != nil {
		return err
	}
	if err := a.servePprof(); err != nil {
		return err
	}
	return a.startProplets(runCtx)
}

// connect embeds nats-server or dials the external one.
func (a *App) connect(ctx context.Context) error {
	if a.cfg.NATSURL != "" {
		nc, err := nats.Connect(a.cfg.NATSURL, append(a.tls.natsTLS(), nats.Name("jetprop"), nats.MaxReconnects(-1),
			nats.ReconnectWait(500*time.Millisecond))...)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", redact(a.cfg.NATSURL), err)
		}
		a.nc, a.mqttURL, a.engineMQTT = nc, redact(a.cfg.MQTTURL), a.cfg.MQTTURL
		return nil
	}
	a.gate = &gate{topics: a.topics(), open: !a.cfg.Auth}
	ns, err := a.startNATS(ctx)
	if err != nil {
		return err
	}
	a.ns = ns
	if a.nc, err = ns.Connect(); err != nil {
		return err
	}
	a.mqttURL, a.engineMQTT = ns.MQTTURL(), ns.EngineMQTTURL()
	return nil
}

// startNATS starts the embedded server: a single one whose engine
// password is kept in the data dir, or a cluster node whose engine
// password, derived from the cluster secret, is written there.
func (a *App) startNATS(ctx context.Context) (*natsserver.Server, error) {
	cluster, err := a.cfg.clusterConfig()
	if err != nil {
		return nil, err
	}
	cfg := natsserver.Config{
		DataDir: a.cfg.DataDir, Host: a.cfg.Host, NATSPort: a.cfg.NATSPort, MQTTPort: a.cfg.MQTTPort, ServerName: a.cfg.ServerName,
		SyncAlways: a.cfg.SyncAlways, Logger: a.log.With("component", "nats"), Authorize: a.gate, TLS: a.tls.listeners, Cluster: cluster,
	}
	if cluster == nil {
		if cfg.EnginePassword, err = secretFile(a.cfg.DataDir, EngineSecretFile); err != nil {
			return nil, err
		}
		return natsserver.Start(ctx, cfg)
	}
	a.log.Info("starting a cluster node", "server_name", a.cfg.ServerName, "cluster", cluster.Name, "listen", a.cfg.ClusterListen, "routes", a.cfg.Routes)
	ns, err := natsserver.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := writeSecret(filepath.Join(a.cfg.DataDir, EngineSecretFile), ns.EnginePassword()); err != nil {
		ns.Shutdown()
		return nil, err
	}
	return ns, nil
}

// open creates streams and buckets, rebuilds projections, connects MQTT.
func (a *App) open(ctx context.Context) error {
	js, err := jetstream.New(a.nc)
	if err != nil {
		return err
	}
	a.quar = events.NewQuarantine()
	a.quar.Observe(a.logQuarantined)
	if a.store, err = created(ctx, a.log, "event streams", func(ctx context.Context) (*events.JetStream, error) {
		return events.NewJetStream(ctx, a.nc, events.StreamOptions{Replicas: a.cfg.Replicas}, events.WithQuarantine(a.quar))
	}); err != nil {
		return err
	}
	a.logStreams()
	if a.modules, err = created(ctx, a.log, "module store", func(ctx context.Context) (*artifacts.Store, error) {
		return artifacts.New(ctx, js, artifacts.Options{MaxSize: a.cfg.MaxModule, Replicas: a.cfg.Replicas})
	}); err != nil {
		return err
	}
	a.codec = events.DefaultCodec()
	held := projections.WithQuarantine(a.quar)
	a.tasks, a.devices = projections.NewTasks(a.codec, held), projections.NewDevices(a.codec, held)
	a.arts, a.wfs = projections.NewArtifacts(a.codec, held), projections.NewWorkflows(a.codec, held)
	a.toks, a.secs = projections.NewTokens(a.codec, held), projections.NewSecrets(a.codec, held)
	if err := a.restoreSnapshots(ctx, js); err != nil {
		return err
	}
	for _, p := range []projections.Projection{a.tasks, a.devices, a.arts, a.wfs, a.toks, a.secs} {
		if err := a.untilAvailable(ctx, "read model of "+p.Kind().Stream(), func(ctx context.Context) error { return projections.Catchup(ctx, a.store, p) }); err != nil {
			return err
		}
	}
	a.appends = metrics.CountAppends(a.store)
	a.handler = service.NewHandler(a.appends, a.codec, service.SystemClock{}, service.NewULIDs(), service.WithQuarantine(a.quar),
		service.WithVersions(a.versions))
	imp, err := NewImporter(a.modules, importDefaults(a.cfg), a.cfg.OCIHosts(), a.log.With("component", "oci"))
	if err != nil {
		return err
	}
	seal, keyAt, err := a.sealer()
	if err != nil {
		return err
	}
	a.logSecretsKey(seal, keyAt)
	a.svc = service.New(a.handler, a.tasks, a.devices, a.modules, service.WithArtifacts(a.arts), service.WithImporter(imp),
		service.WithWorkflows(a.wfs), service.WithTokens(a.toks), service.WithSecrets(a.secs, seal),
		service.WithTaskSlots(a.cfg.TaskSlots))
	a.resolver = newModuleResolver(a.svc, imp, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		last, err := a.store.LastSeq(ctx, events.KindArtifact)
		if err != nil {
			return err
		}
		return a.arts.WaitFor(ctx, last)
	})
	if a.timers, err = created(ctx, a.log, "timers", func(ctx context.Context) (*timers.Timers, error) {
		return timers.New(ctx, js, timers.Options{Replicas: a.cfg.Replicas, Logger: a.log.With("component", "timers")})
	}); err != nil {
		return err
	}
	a.wfm = service.NewWorkflowManager(a.svc, timerStore{a.timers}, a.log.With("component", "workflows"))
	a.tasks.Observe(a.wfm.ObserveTask)
	a.wfs.Observe(a.wfm.ObserveWorkflow)
	a.devices.Observe(a.wfm.ObserveDevice)
	a.tcron = service.NewTaskCron(a.svc, timerStore{a.timers}, a.log.With("component", "task-cron"))
	a.tasks.Observe(a.tcron.ObserveTask)
	a.devices.Observe(a.tcron.ObserveDevice)
	a.revoked = make(chan string, 256)
	a.devices.Observe(a.observeRevoked)
	if a.gate != nil {
		a.gate.devices.Store(a.devices) // devices may connect from now on
	}
	topics := a.topics()
	liveness := service.NewLiveness(service.SystemClock{}, a.cfg.Liveness)
	for _, d := range a.devices.Up() {
		liveness.Seen(d.ID)
	}
	clientID, err := stableID(a.cfg.DataDir, "engine-id", "jetprop-engine-")
	if err != nil {
		return err
	}
	// The dispatching is shared among engine replicas by leases on
	// partitions of the tasks; the replica id is the MQTT client id's,
	// stable across restarts, so a restarted replica takes its leases
	// back at once.
	if a.leases, err = created(ctx, a.log, "leases", func(ctx context.Context) (*leases.Leases, error) {
		return leases.New(ctx, js, leases.Config{Replica: clientID, Replicas: a.cfg.Replicas, Logger: a.log.With("component", "leases")})
	}); err != nil {
		return err
	}
	a.pub, err = outbound.NewPublisher(ctx, outbound.PublisherConfig{
		URL: a.engineMQTT, ClientID: clientID, QoS: 1, Topics: topics, TLS: a.tls.engine, ConnectFor: time.Minute,
	}, a.log.With("component", "publisher"))
	if err != nil {
		return err
	}
	a.invoker, err = created(ctx, a.log, "invocation stream", func(ctx context.Context) (*mqtt.Invoker, error) {
		return mqtt.NewInvoker(ctx, mqtt.InvokerPorts{NC: a.nc, Sender: a.pub, Devices: a.devices}, topics, a.cfg.Replicas,
			a.log.With("component", "invoker"))
	})
	if err != nil {
		return err
	}
	transfers := mqtt.NewTransfers(a.handler)
	a.chunks = outbound.NewChunkServer(outbound.ChunkPorts{Resolver: a.resolver, Opener: a.modules, Publisher: a.pub, Progress: transfers, Tasks: transfers},
		outbound.ChunkConfig{ChunkSize: a.cfg.ChunkSize, MaxPayload: int(a.nc.MaxPayload())}, a.log.With("component", "chunks"))
	a.inbound, err = created(ctx, a.log, "device stream", func(ctx context.Context) (*mqtt.Inbound, error) {
		return mqtt.NewInbound(ctx, mqtt.InboundPorts{JetStream: js, Commands: a.handler, Refusals: a.handler, Seer: liveness, ModuleRequests: a.chunks.Request,
			Devices: a.devices, Acks: a.pub, Interrupts: a.svc},
			mqtt.InboundConfig{Topics: topics, Replicas: a.cfg.Replicas, MaxBytes: a.cfg.EdgeMaxBytes,
				WorkLimit: a.cfg.DeviceLimit, LivenessLimit: a.cfg.DeviceAliveLimit}, a.log.With("component", "inbound"))
	})
	if err != nil {
		return err
	}
	a.liveness = liveness
	a.observer = mqtt.NewObserver(a.nc, topics, liveness, a.devices, a.log.With("component", "heartbeats"))
	a.samples = mqtt.NewSamples(mqtt.DefaultMetricsSamples, mqtt.DefaultMetricsTasks)
	if !a.cfg.MetricsOff {
		a.observer.Keep(a.samples, a.tasks, time.Now)
		a.latencies = metrics.NewLatencies()
	}
	a.attempts, err = service.NewAttemptWatch(a.svc, a.tasks, service.SystemClock{},
		service.AttemptWatchConfig{Grace: a.cfg.DeadlineGrace, WillSettle: a.cfg.Liveness}, a.log.With("component", "attempts"))
	return err
}

// versions is the sequence of a device's or task's last event as the read
// models have folded it: the handler checks a cached no-op (a heartbeat of
// an alive device) against it instead of asking the store.
func (a *App) versions(agg events.Aggregate) (uint64, bool) {
	switch agg.Kind {
	case events.KindDevice:
		d, ok := a.devices.Get(agg.ID)
		return d.Seq, ok
	case events.KindTask:
		t, ok := a.tasks.Get(agg.ID)
		return t.Seq, ok
	}
	return 0, false
}

// logQuarantined logs an aggregate as it is quarantined.
func (a *App) logQuarantined(r events.Quarantined) {
	a.log.Warn("aggregate quarantined: a stored message cannot be read; its commands are refused, the rest runs; 'jetprop events doctor' shows it",
		"aggregate", r.Aggregate.String(), "stream", r.Stream, "seq", r.Seq, "err", r.Reason)
}

// logStreams logs what the event streams held at start, and each one
// found damaged with what to do.
func (a *App) logStreams() {
	var held []string
	for _, s := range a.store.Opened() {
		n := fmt.Sprintf("%s=%d", s.Stream, s.Messages)
		if s.Created {
			n += "(created)"
		}
		held = append(held, n)
	}
	a.log.Info("event streams", "messages", strings.Join(held, " "))
	for _, p := range a.quar.Streams() {
		a.log.Warn("event stream damaged: "+p.Detail, "stream", p.Stream, "problem", p.Problem,
			"first_seq", p.FirstSeq, "last_seq", p.LastSeq, "messages", p.Messages)
	}
}

func (a *App) topics() wire.Topics { return wire.Topics{Tenant: a.cfg.Tenant, Channel: a.cfg.Channel} }

// startLoops starts the consumers and process managers.
func (a *App) startLoops(ctx context.Context) {
	from := a.tasks.LastSeq() + 1
	inline := a.nc.MaxPayload()*3/4 - 64<<10 // base64 and the rest of the start message must fit
	ports := mqtt.DispatcherPorts{Store: a.store, Codec: a.codec, Tasks: a.tasks, Commands: a.handler,
		Modules: a.modules, Sender: a.pub, Resolver: a.resolver, Devices: a.devices, Secrets: a.svc, Quarantine: a.quar, Replacer: a.svc, Handled: a.inbound, Shares: a.leases}
	if a.latencies != nil {
		ports.Latency = a.latencies
	}
	disp := mqtt.NewDispatcher(ports,
		mqtt.DispatcherConfig{InlineLimit: inline, AcceptTimeout: a.cfg.AcceptTimeout}, a.log.With("component", "dispatcher"))
	a.goRun(ctx, "chunk server", a.chunks.Run)
	a.goRun(ctx, "tasks projection", func(ctx context.Context) error { return projections.Follow(ctx, a.store, a.tasks) })
	a.goRun(ctx, "devices projection", func(ctx context.Context) error { return projections.Follow(ctx, a.store, a.devices) })
	a.goRun(ctx, "artifacts projection", func(ctx context.Context) error { return projections.Follow(ctx, a.store, a.arts) })
	a.goRun(ctx, "workflows projection", func(ctx context.Context) error { return projections.Follow(ctx, a.store, a.wfs) })
	a.goRun(ctx, "tokens projection", func(ctx context.Context) error { return projections.Follow(ctx, a.store, a.toks) })
	a.goRun(ctx, "secrets projection", func(ctx context.Context) error { return projections.Follow(ctx, a.store, a.secs) })
	a.goRun(ctx, "inbound", a.inbound.Run)
	a.goRun(ctx, "leases", a.leases.Run)
	a.disp = disp
	a.goRun(ctx, "dispatcher", func(ctx context.Context) error { return disp.Run(ctx, from) })
	a.goRun(ctx, "heartbeat observer", a.observer.Run)
	a.goRun(ctx, "liveness", a.watchLiveness)
	a.goRun(ctx, "attempts", a.attempts.Run)
	a.goRun(ctx, "revocations", a.kickRevoked)
	a.goRun(ctx, "workflow manager", a.wfm.Run)
	a.goRun(ctx, "task cron", a.tcron.Run)
	a.goRun(ctx, "timers", func(ctx context.Context) error { return a.timers.Run(ctx, a.fireTimer) })
	a.goRun(ctx, "snapshots", a.runSnapshots)
}

// goRun runs fn in an owned goroutine; the first failure is kept and ends the app.
func (a *App) goRun(ctx context.Context, name string, fn func(context.Context) error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := a.untilAvailable(ctx, name, fn)
		if err == nil || ctx.Err() != nil {
			return
		}
		a.errMu.Lock()
		defer a.errMu.Unlock()
		if a.err == nil {
			a.err = fmt.Errorf("%s: %w", name, err)
			a.log.Error("component failed", "component", name, "err", err)
			close(a.failed)
		}
	}()
}

// untilAvailable runs fn, and runs it again while it fails because
// JetStream is unavailable for now (on a cluster: a node died, a leader is
// being elected), with a growing pause and a line saying what waits; any
// other failure is returned. It serves the steps of the start that are
// safe to repeat and may take long (catching up a read model resumes from
// its last sequence; creating streams and buckets goes through created)
// and every component goRun runs, which resumes where its state says
// (projections from their last sequence, consumers from their ack floor).
func (a *App) untilAvailable(ctx context.Context, what string, fn func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || !events.Unavailable(err) {
			return err
		}
		a.log.Warn("JetStream unavailable; trying again", "for", what, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (a *App) watchLiveness(ctx context.Context) error {
	tick := time.NewTicker(max(a.liveness.Timeout()/3, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, id := range a.liveness.Expired() {
			reason := "no heartbeat for " + a.liveness.Timeout().String()
			if _, err := a.handler.Device(ctx, engine.MarkOffline{ID: id, Reason: reason}); err != nil && ctx.Err() == nil {
				a.log.Warn("mark offline", "device", id, "err", err)
			}
		}
	}
}

func (a *App) serveHTTP() error {
	m, err := a.newMetrics()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.httpLn = ln
	opts := []httpapi.Option{httpapi.WithLogger(a.log.With("component", "http")),
		httpapi.WithMaxBody(a.cfg.MaxModule*4/3 + 1<<20), httpapi.WithVersion(BuildVersion()), httpapi.WithMetrics(m),
		httpapi.WithInbound(a.inboundStats), httpapi.WithLimits(a.cfg.httpLimits()), httpapi.WithSamples(a.samples)}
	if a.invoker != nil {
		opts = append(opts, httpapi.WithInvoker(a.invoker))
	}
	if a.cfg.Auth {
		opts = append(opts, httpapi.WithAuth())
	}
	h := httpapi.New(a.svc, a.store, opts...)
	a.httpSrv = &http.Server{Handler: h, TLSConfig: a.tls.http,
		ReadHeaderTimeout: a.cfg.HTTPReadHeaderTimeout, ReadTimeout: a.cfg.HTTPReadTimeout,
		WriteTimeout: a.cfg.HTTPWriteTimeout, IdleTimeout: a.cfg.HTTPIdleTimeout,
		ErrorLog: slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelWarn)} // failed TLS handshakes, among others
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server", "err", err)
		}
	}()
	return nil
}

// newMetrics is the registry GET /metrics serves: it reads the read
// models' counts, the inbound counters and the quarantine at each scrape.
func (a *App) newMetrics() (*metrics.Registry, error) {
	src := metrics.Sources{Tasks: a.tasks, Devices: a.devices, Inbound: a.inbound, Quarantine: a.quar, Appends: a.appends,
		Latencies: a.latencies,
		Lag: &metrics.Lag{Edge: a.inbound, Store: a.store,
			Models: []metrics.Followed{a.tasks, a.devices, a.arts, a.wfs, a.toks, a.secs}},
		Delivery: &metrics.Delivery{Inline: a.disp.InlineBytes, Chunks: a.chunks.SentBytes}}
	if a.invoker != nil {
		src.Invokes = a.invoker
	}
	return metrics.New(src,
		metrics.WithLogger(a.log.With("component", "metrics")), metrics.WithVersion(BuildVersion()))
}

func (a *App) startProplets(ctx context.Context) error {
	for i := range a.cfg.Proplets {
		cfg := proplet.Config{
			MQTTAddress: a.mqttURL, Tenant: a.cfg.Tenant, Channel: a.cfg.Channel,
			DataDir: filepath.Join(a.cfg.DataDir, "proplets", strconv.Itoa(i)), QoS: 1, TLS: a.tls.proplets, MetricsOff: a.cfg.MetricsOff,
		}
		if a.cfg.Auth {
			var err error
			if cfg.EntityID, cfg.APIKey, err = a.localDevice(ctx, i, cfg.DataDir); err != nil {
				return fmt.Errorf("local proplet %d: %w", i, err)
			}
		}
		p, err := proplet.New(cfg, a.log.With("component", "proplet", "n", i))
		if err != nil {
			return fmt.Errorf("local proplet %d: %w", i, err)
		}
		a.proplets = append(a.proplets, p)
		a.goRun(ctx, "proplet "+p.ID(), p.Run)
	}
	return nil
}

// PropletStats returns the counters of the local proplets (Config.Proplets).
func (a *App) PropletStats() []proplet.Stats {
	out := make([]proplet.Stats, 0, len(a.proplets))
	for _, p := range a.proplets {
		out = append(out, p.Stats())
	}
	return out
}

// EngineMQTT returns the engine's own MQTT credentials (the embedded
// server's; empty with an external one): for tests that must publish what
// only the engine may.
func (a *App) EngineMQTT() (user, password string) {
	if a.ns == nil {
		return "", ""
	}
	return a.ns.EngineMQTT()
}

// HTTPURL is the base URL of the HTTP API.
func (a *App) HTTPURL() string {
	if a.tls.http != nil {
		return "https://" + a.httpLn.Addr().String()
	}
	return "http://" + a.httpLn.Addr().String()
}

// serve serves the HTTP API on ln, over TLS when configured.
func (a *App) serve(ln net.Listener) error {
	if a.tls.http != nil {
		return a.httpSrv.ServeTLS(ln, "", "")
	}
	return a.httpSrv.Serve(ln)
}

// MQTTURL is the MQTT listener proplets connect to.
func (a *App) MQTTURL() string { return a.mqttURL }

// NATSURL is the NATS client URL (with --nats-url, its URLs without credentials).
func (a *App) NATSURL() string {
	if a.ns == nil {
		return redact(a.cfg.NATSURL)
	}
	return a.ns.ClientURL()
}

// Service, Handler, Store, Tasks, Devices and Inbound expose the parts (for tests and benchmarks).
func (a *App) Service() *service.Service     { return a.svc }
func (a *App) Handler() *service.Handler     { return a.handler }
func (a *App) Store() events.Store           { return a.store }
func (a *App) Tasks() *projections.Tasks     { return a.tasks }
func (a *App) Devices() *projections.Devices { return a.devices }
func (a *App) InboundStats() mqtt.Snapshot   { return a.inbound.Stats() }
func (a *App) Conn() *nats.Conn              { return a.nc }
func (a *App) Leases() *leases.Leases        { return a.leases }

// Quarantine holds the aggregates stopped by a stored message that cannot
// be read and the event streams found damaged at start.
func (a *App) Quarantine() *events.Quarantine { return a.quar }

// Artifacts is the artifact catalog (for tests).
func (a *App) Artifacts() *projections.Artifacts { return a.arts }

// Tokens returns the API tokens read model.
func (a *App) Tokens() *projections.Tokens { return a.toks }

// Secrets returns the secrets read model (names, versions, sealed values).
func (a *App) Secrets() *projections.Secrets { return a.secs }

// Workflows returns the workflows read model.
func (a *App) Workflows() *projections.Workflows { return a.wfs }

// TaskCron is the scheduler of the cron tasks.
func (a *App) TaskCron() *service.TaskCron { return a.tcron }

// Failed is closed when a component failed; Err says which.
func (a *App) Failed() <-chan struct{} { return a.failed }

// Err is the first component failure, nil if none.
func (a *App) Err() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

// Close stops everything, in reverse order of start, and waits for it.
func (a *App) Close() {
	if a.pprofSrv != nil {
		_ = a.pprofSrv.Close()
	}
	if a.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.httpSrv.Shutdown(ctx)
		cancel()
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.invoker != nil {
		a.invoker.Close()
	}
	if a.pub != nil {
		a.pub.Close()
	}
	if a.nc != nil {
		a.nc.Close()
	}
	if a.ns != nil {
		a.ns.Shutdown()
	}
}

// withoutUser is rawURL without the credentials in it: the engine's
// credentials are not for local proplets.
func withoutUser(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	u.User = nil
	return u.String()
}
