package fleetsim

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/examples"
)

// Defaults of RunConfig.
const (
	DefaultAliveTimeout    = 3 * time.Minute
	DefaultReachTimeout    = 3 * time.Minute
	DefaultConcurrency     = 8
	DefaultTaskWait        = 30 * time.Second
	DefaultDispatchTimeout = 5 * time.Minute
	DefaultFunction        = "add"
)

// RunConfig declares a measurement: a fleet, the server's API, and which
// phases to run.
type RunConfig struct {
	Fleet Config
	API   *client.Client // the server's HTTP API (required)

	// Module is the wasm module of every task (default examples.Add()),
	// Function the export it names; devices answer without running it.
	Module   []byte
	Function string

	// PID is the server's process, sampled from /proc in the steady
	// window; 0 samples nothing. It may not be this process.
	PID int
	// Window is the steady window: the fleet connected and heartbeating,
	// no tasks. The server's CPU and memory and the heartbeat
	// acknowledgement latency are measured over it; 0 skips it.
	Window       time.Duration
	AliveTimeout time.Duration // for the API to show every device alive

	Reach        bool          // send one task to every device, targeted at it
	ReachTimeout time.Duration // for the starts to arrive and the results to be recorded

	Tasks           int           // dispatch test: tasks not targeted, per round (0 skips it)
	Rounds          int           // dispatch test: rounds of Tasks tasks (default 1)
	Concurrency     int           // API requests in flight (reach and dispatch)
	TaskWait        time.Duration // a dispatched task not finished by then is stuck
	DispatchTimeout time.Duration // the whole dispatch test

	// Backlog, when set, tells how many device messages wait for the
	// engine (jetprop sim: the pending and unacknowledged messages of the
	// slower of EDGE_IN's consumers); it is sampled every second in the
	// steady window and the dispatch test.
	Backlog func(ctx context.Context) (int, error)

	Logger *slog.Logger // progress; default: discard
}

func (c *RunConfig) setDefaults() {
	if c.Module == nil {
		c.Module = examples.Add()
	}
	c.Function = cmp.Or(c.Function, DefaultFunction)
	c.AliveTimeout = cmp.Or(c.AliveTimeout, DefaultAliveTimeout)
	c.ReachTimeout = cmp.Or(c.ReachTimeout, DefaultReachTimeout)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.TaskWait = cmp.Or(c.TaskWait, DefaultTaskWait)
	c.DispatchTimeout = cmp.Or(c.DispatchTimeout, DefaultDispatchTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate fills the defaults and checks the config (the fleet's too).
func (c *RunConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.API == nil:
		return errors.New("fleetsim: the API client is required")
	case c.PID != 0 && c.PID == os.Getpid():
		return errors.New("fleetsim: --pid is this process: run the server as a process of its own")
	case c.Window < 0 || c.Tasks < 0 || c.Concurrency < 1:
		return errors.New("fleetsim: window and tasks must not be negative, concurrency at least 1")
	}
	if c.Fleet.Logger == nil {
		c.Fleet.Logger = c.Logger
	}
	return c.Fleet.Validate()
}

// Report is what a Run measured. Phases that did not run are nil.
type Report struct {
	Devices  int             `json:"devices"`
	Connect  ConnectReport   `json:"connect"`
	Alive    AliveReport     `json:"alive"`
	Steady   *SteadyReport   `json:"steady,omitempty"`
	Reach    *ReachReport    `json:"reach,omitempty"`
	Dispatch *DispatchReport `json:"dispatch,omitempty"`
	Fleet    Stats           `json:"fleet"` // at the end
	// Filled by fleetbench: the server's graceful shutdown with the
	// fleet's sessions stored, and its start on the same data until
	// GET /health answers.
	Shutdown *Duration `json:"shutdown,omitempty"`
	Restart  *Duration `json:"restart,omitempty"`
}

// ConnectReport is the connect phase.
type ConnectReport struct {
	Took       Duration `json:"took"`
	Ready      int      `json:"ready"`      // devices connected and set up
	Subscribed int      `json:"subscribed"` // whose subscription to starts the broker accepted
	// Unreachable devices had their subscription refused, and say so in
	// their heartbeats.
	Unreachable int    `json:"unreachable"`
	Err         string `json:"error,omitempty"`
}

// Run connects a fleet, measures the server with it, and disconnects it.
// A phase that does not complete in time is a measurement, not an error:
// the report says how far it got. Run fails when the server cannot be
// reached or sampled.
func Run(ctx context.Context, cfg RunConfig) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	if _, err := cfg.API.Health(ctx); err != nil {
		return Report{}, fmt.Errorf("fleetsim: server: %w", err)
	}
	if cfg.PID != 0 {
		if _, err := ReadProc(cfg.PID); err != nil {
			return Report{}, err
		}
	}
	f, err := New(cfg.Fleet)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()
	r := Report{Devices: cfg.Fleet.Devices}
	err = runPhases(ctx, cfg, f, &r)
	r.Fleet = f.Stats()
	return r, err
}

func runPhases(ctx context.Context, cfg RunConfig, f *Fleet, r *Report) error {
	log := cfg.Logger
	r.Connect = connect(ctx, cfg, f)
	log.Info("connected", "ready", r.Connect.Ready, "subscribed", r.Connect.Subscribed, "unreachable", r.Connect.Unreachable,
		"took", r.Connect.Took)
	r.Alive = WaitAlive(ctx, cfg.API, f.IDs(), cfg.AliveTimeout)
	log.Info("API shows alive", "alive", r.Alive.Alive, "took", r.Alive.Took)
	var err error
	if cfg.Window > 0 {
		if r.Steady, err = steady(ctx, cfg, f); err != nil {
			return err
		}
		log.Info("steady", "cpu%", fmt.Sprintf("%.1f", r.Steady.CPUPercent), "rss", mib(r.Steady.RSS), "heartbeat_ack", r.Steady.Heartbeats)
	}
	if cfg.Tasks > 0 {
		if r.Dispatch, err = Dispatch(ctx, cfg, f); err != nil {
			return err
		}
		log.Info("dispatch", "completed", r.Dispatch.Completed, "stuck", r.Dispatch.Stuck, "tasks/s", fmt.Sprintf("%.0f", r.Dispatch.PerSecond))
	}
	if cfg.Reach {
		if r.Reach, err = Reach(ctx, cfg, f); err != nil {
			return err
		}
		log.Info("reach", "reached", r.Reach.Reached, "foreign", r.Reach.Foreign, "recorded", r.Reach.Recorded, "took", r.Reach.Took)
	}
	return ctx.Err()
}

// connect runs the fleet's Connect, bounded by the alive timeout.
func connect(ctx context.Context, cfg RunConfig, f *Fleet) ConnectReport {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, cfg.AliveTimeout)
	defer cancel()
	var rep ConnectReport
	if err := f.Connect(cctx); err != nil {
		rep.Err = err.Error()
	}
	s := f.Stats()
	rep.Took, rep.Ready, rep.Subscribed, rep.Unreachable = Duration(time.Since(start)), s.Ready, s.Subscribed, s.Unreachable
	return rep
}

// uploadModule stores the module once and returns its digest, which
// every task then names.
func uploadModule(ctx context.Context, cfg RunConfig) (string, error) {
	a, err := cfg.API.PushArtifact(ctx, "fleetsim", cfg.Function, bytes.NewReader(cfg.Module), int64(len(cfg.Module)), nil)
	if err != nil {
		return "", fmt.Errorf("fleetsim: upload the module: %w", err)
	}
	return a.Digest, nil
}

// taskRequest is a task of the module, targeted at device unless "".
func taskRequest(cfg RunConfig, digest, device string) httpapi.TaskRequest {
	return httpapi.TaskRequest{Name: cfg.Function, ImageURL: digest, Inputs: []string{"1", "2"}, PropletID: device}
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
