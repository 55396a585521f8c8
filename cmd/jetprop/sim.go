package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/fleetsim"
)

func simCommand() *command {
	return &command{
		name: "sim", summary: "simulate a fleet of proplets against a server and measure it", maxArgs: 0,
		help: `Connect --devices simulated proplets to the MQTT listener at --mqtt-url and
measure the server at --server with them. Each device speaks the proplet's
protocol on its own topics (persistent session, last will, its starts
subscribed at --qos, discovery, a heartbeat every --heartbeat at
--heartbeat-qos), accepts
every start it receives (a re-sent one too) and answers each task and
attempt once with "ok" after --answer-delay, without running wasm. A
device whose subscription the broker refuses heartbeats "unreachable" with
the reason. --qos 1 --accept=false is the proplet before accepts (one
JetStream consumer per device, no accept), for the measurements made then.

The phases: connect (at --connect-rate devices a second); wait until GET
/proplets shows every device alive; a steady window of --duration in which
the server process --pid is sampled from /proc (CPU, memory) and, with
--heartbeat-qos 1, heartbeat acknowledgements are timed; with --tasks, a dispatch test of --rounds
rounds of that many tasks, not targeted, --concurrency at a time (tasks/s
of the median round, tasks stuck and why); then one task per device, targeted at it, counting which devices
receive their own start and which results are recorded (--reach). With
--nats-url and --nats-password-file
it also samples, every second of the window and the dispatch test, the
device messages the engine has not handled yet (EDGE_IN's backlog). It
prints one row of a Markdown table
(-o json: the whole report). Run the server as a process of its own
('make fleet-bench' does all of it for several fleet sizes).

Example: jetprop sim --devices 1000 --mqtt-url tcp://127.0.0.1:1883 --pid $(pgrep -n jetprop) --tasks 2000`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			o := simFlags(fs)
			format := outputFlag(fs)
			return func(ctx context.Context, _ []string) error {
				o.api, o.format = newClient(), *format
				return runSim(ctx, e, o)
			}
		},
	}
}

// simOptions are the flags of sim.
type simOptions struct {
	run         fleetsim.RunConfig
	rate        int    // --connect-rate
	qos         int    // --qos
	hbQoS       int    // --heartbeat-qos
	accept      bool   // --accept
	credentials string // --credentials

	natsURL, natsPasswordFile string // where to read EDGE_IN's backlog

	api    *client.Client
	format string
}

// runSim runs the simulation and prints its report.
func runSim(ctx context.Context, e *env, o *simOptions) error {
	cfg := o.run
	cfg.API, cfg.Logger = o.api, newLogger(e.stderr, "info")
	if err := o.fleet(&cfg.Fleet); err != nil {
		return err
	}
	if o.natsURL != "" {
		backlog, closeNATS, err := edgeBacklog(o.natsURL, o.natsPasswordFile)
		if err != nil {
			return err
		}
		defer closeNATS()
		cfg.Backlog = backlog
	}
	r, err := fleetsim.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if o.format == formatJSON {
		return printJSON(e.stdout, r)
	}
	return fleetsim.WriteTable(e.stdout, r)
}

// fleet puts the flags that are not plain fields of the fleet's config
// into it.
func (o *simOptions) fleet(f *fleetsim.Config) error {
	if o.qos != 0 && o.qos != 1 {
		return fmt.Errorf("--qos %d: want 0 or 1", o.qos)
	}
	if o.hbQoS != 0 && o.hbQoS != 1 {
		return fmt.Errorf("--heartbeat-qos %d: want 0 or 1", o.hbQoS)
	}
	f.HeartbeatQoS = byte(o.hbQoS)
	f.QoS, f.NoAccept, f.ConnectRate = byte(o.qos), !o.accept, float64(o.rate)
	return readCredentials(o.credentials, f)
}

// simFlags declares the flags of sim.
func simFlags(fs *flagSet) *simOptions {
	o := &simOptions{}
	cfg, f := &o.run, &o.run.Fleet
	fs.Int(&f.Devices, "devices", 100, "simulated proplets (with --credentials: the first this many of them, 0 for all)")
	fs.String(&f.URL, "mqtt-url", "tcp://127.0.0.1:1883", "`URL` of the server's MQTT listener")
	fs.String(&f.Tenant, "tenant", fleetsim.DefaultTenant, "tenant (domain) id in topics m/<tenant>/c/<channel>/...")
	fs.String(&f.Channel, "channel", fleetsim.DefaultChannel, "channel id in topics")
	fs.String(&f.IDPrefix, "id-prefix", fleetsim.DefaultIDPrefix, "devices are <prefix>-00000, <prefix>-00001, ...")
	fs.String(&o.credentials, "credentials", "", "`file` of provisioned devices for a server with --auth on, one a line: <id> <key> (or what 'jetprop device add' prints)")
	fs.Int(&o.qos, "qos", 0, "QoS of each device's subscription to its starts: 0 as the proplet, 1 as before accepts (a JetStream consumer per device)")
	fs.Bool(&o.accept, "accept", true, `accept every start and heartbeat "unreachable" when the broker refuses the subscription, as the proplet (false: as before)`)
	fs.Duration(&f.Heartbeat, "heartbeat", fleetsim.DefaultHeartbeat, "between a device's heartbeats")
	fs.Int(&o.hbQoS, "heartbeat-qos", 0, "QoS of the heartbeats: 0 as the proplet, 1 to time the broker's acknowledgement of each (the heartbeat ack column)")
	fs.Duration(&f.AnswerDelay, "answer-delay", 0, "from a start to its result")
	fs.Bool(&f.Echo, "echo", false, `answer with the start's inputs instead of "ok"`)
	fs.Int(&o.rate, "connect-rate", 500, "devices that start connecting per second, 0 for no limit (a connect storm)")
	fs.Int(&f.ConnectParallel, "connect-parallel", fleetsim.DefaultConnectParallel, "devices between their CONNECT and the end of their setup at once")
	fs.Int(&cfg.PID, "pid", 0, "process id of the server to sample from /proc in the steady window (0: none)")
	fs.Duration(&cfg.Window, "duration", time.Minute, "steady window: the fleet heartbeating, no tasks (0 skips it)")
	fs.Duration(&cfg.AliveTimeout, "alive-timeout", fleetsim.DefaultAliveTimeout, "for the fleet to connect, and for the API to show it alive")
	fs.Bool(&cfg.Reach, "reach", true, "send one task to every device, targeted at it, and count the starts that arrive")
	fs.Duration(&cfg.ReachTimeout, "reach-timeout", fleetsim.DefaultReachTimeout, "for those starts to arrive and their results to be recorded")
	fs.Int(&cfg.Tasks, "tasks", 0, "dispatch test: tasks not targeted, per round (0 skips it)")
	fs.Int(&cfg.Rounds, "rounds", 1, "dispatch test: rounds of --tasks tasks; tasks/s is the median round's")
	fs.Int(&cfg.Concurrency, "concurrency", fleetsim.DefaultConcurrency, "API requests in flight in the reach and dispatch tests")
	fs.Duration(&cfg.TaskWait, "task-wait", fleetsim.DefaultTaskWait, "a dispatched task not finished by then counts as stuck")
	fs.Duration(&cfg.DispatchTimeout, "dispatch-timeout", fleetsim.DefaultDispatchTimeout, "for the whole dispatch test")
	fs.String(&o.natsURL, "nats-url", "", "`URL` of the server's NATS port: sample the device messages waiting for the engine (EDGE_IN) in the steady window and the dispatch test")
	fs.String(&o.natsPasswordFile, "nats-password-file", "", "`file` with the engine's NATS password, for --nats-url: <data>/"+app.EngineSecretFile+" of the server")
	return o
}

// edgeBacklog connects as the engine to the NATS server at url and returns
// a function that tells how many device messages wait for the engine: the
// pending and unacknowledged messages of the slower of EDGE_IN's two
// consumers (work and liveness; a server without the liveness consumer
// has only the first).
func edgeBacklog(url, passwordFile string) (func(context.Context) (int, error), func(), error) {
	pw, err := os.ReadFile(passwordFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--nats-password-file: %w", err)
	}
	nc, err := nats.Connect(url, nats.UserInfo(natsserver.EngineUser, strings.TrimSpace(string(pw))), nats.Name("jetprop sim"))
	if err != nil {
		return nil, nil, fmt.Errorf("--nats-url: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return func(ctx context.Context) (int, error) {
		work, err := consumerBacklog(ctx, js, mqtt.EdgeConsumer)
		if err != nil {
			return 0, err
		}
		live, err := consumerBacklog(ctx, js, mqtt.EdgeLivenessConsumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return work, nil
		}
		return max(work, live), err
	}, nc.Close, nil
}

// consumerBacklog is the pending and unacknowledged messages of one of
// EDGE_IN's consumers.
func consumerBacklog(ctx context.Context, js jetstream.JetStream, name string) (int, error) {
	c, err := js.Consumer(ctx, mqtt.EdgeStream, name)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.NumPending) + info.NumAckPending, nil
}

// readCredentials reads the --credentials file, if any, into the fleet.
func readCredentials(path string, f *fleetsim.Config) error {
	if path == "" {
		return nil
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	f.Credentials, err = fleetsim.ReadCredentials(file)
	return err
}
