package fleetsim

import (
	"context"
	"os"
	"runtime"
	"sync"
	"time"
)

// SteadyReport is the steady window.
type SteadyReport struct {
	Window          Duration `json:"window"`
	CPUPercent      float64  `json:"cpu_percent"` // the server's, of one core
	RSS             int64    `json:"rss"`         // the server's at the end, bytes
	PeakRSS         int64    `json:"peak_rss"`    // its high-water mark since it started
	Threads         int      `json:"threads"`
	SimCPUPercent   float64  `json:"sim_cpu_percent"` // this process's (the fleet's)
	SimRSS          int64    `json:"sim_rss"`         // this process's at the end, bytes
	SimGoroutines   int      `json:"sim_goroutines"`
	Backlog         *Backlog `json:"edge_backlog,omitempty"` // device messages waiting for the engine
	Heartbeats      Summary  `json:"heartbeat_ack"`
	HeartbeatErrors int64    `json:"heartbeat_errors"`
}

// steady measures the window: the server's CPU and memory (when PID is
// set), this process's CPU, and heartbeat acknowledgements.
func steady(ctx context.Context, cfg RunConfig, f *Fleet) (*SteadyReport, error) {
	f.Heartbeats().Reset()
	errs0 := f.Stats().HeartbeatErrors
	srv0, self0, err := samples(cfg.PID)
	if err != nil {
		return nil, err
	}
	backlog := watchBacklog(ctx, cfg.Backlog)
	select {
	case <-ctx.Done():
		backlog.stop()
		return nil, context.Cause(ctx)
	case <-time.After(cfg.Window):
	}
	b := backlog.stop()
	srv1, self1, err := samples(cfg.PID)
	if err != nil {
		return nil, err
	}
	return &SteadyReport{
		Window: Duration(cfg.Window), CPUPercent: CPUPercent(srv0, srv1), RSS: srv1.RSS, PeakRSS: srv1.PeakRSS,
		Threads: srv1.Threads, SimCPUPercent: CPUPercent(self0, self1), SimRSS: self1.RSS, SimGoroutines: runtime.NumGoroutine(),
		Heartbeats: f.Heartbeats().Summary(), HeartbeatErrors: f.Stats().HeartbeatErrors - errs0, Backlog: b,
	}, nil
}

// samples reads the server (when pid is not 0) and this process.
func samples(pid int) (srv, self ProcSample, err error) {
	if pid != 0 {
		if srv, err = ReadProc(pid); err != nil {
			return srv, self, err
		}
	}
	self, err = ReadProc(os.Getpid())
	return srv, self, err
}

// Backlog is what the samples of a RunConfig.Backlog said.
type Backlog struct {
	Last    int    `json:"last"`
	Max     int    `json:"max"`
	Samples int    `json:"samples"`
	Err     string `json:"error,omitempty"` // the last failed sample
}

// backlogWatch samples a backlog every second until stopped.
type backlogWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	b      Backlog
}

// watchBacklog starts sampling fn; nil fn samples nothing.
func watchBacklog(ctx context.Context, fn func(context.Context) (int, error)) *backlogWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &backlogWatch{cancel: cancel}
	if fn != nil {
		w.wg.Go(func() { w.loop(ctx, fn) })
	}
	return w
}

func (w *backlogWatch) loop(ctx context.Context, fn func(context.Context) (int, error)) {
	for {
		if n, err := fn(ctx); err == nil {
			w.b.Last, w.b.Max, w.b.Samples = n, max(w.b.Max, n), w.b.Samples+1
		} else if ctx.Err() == nil {
			w.b.Err = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// stop ends the sampling and returns what it saw, nil if nothing.
func (w *backlogWatch) stop() *Backlog {
	w.cancel()
	w.wg.Wait()
	if w.b.Samples == 0 && w.b.Err == "" {
		return nil
	}
	return &w.b
}
