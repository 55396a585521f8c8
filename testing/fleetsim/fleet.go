package fleetsim

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Fleet is a set of simulated devices. Connect brings them up; Close takes
// them down. Its methods are safe for concurrent use.
type Fleet struct {
	cfg     Config
	ids     []string
	index   map[string]int // position of each id in ids
	devices []*device
	stats   counters
	acks    Latency // heartbeat PUBACK latency
	sched   *scheduler

	ctx     context.Context // the devices' lifetime, cancelled by Close
	cancel  context.CancelFunc
	loops   sync.WaitGroup // device loops and the scheduler
	answers sync.WaitGroup // results waiting for their delay or their ack

	mu     sync.Mutex
	starts map[string][]Delivery // task id → where its starts went

	closeOnce sync.Once
}

// Delivery is one start a device received.
type Delivery struct {
	Device  string
	Attempt int
}

// New makes a fleet of disconnected devices.
func New(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{cfg: cfg, ids: cfg.IDs(), ctx: ctx, cancel: cancel, starts: map[string][]Delivery{}, sched: newScheduler()}
	f.devices, f.index = make([]*device, len(f.ids)), make(map[string]int, len(f.ids))
	for i, id := range f.ids {
		f.devices[i], f.index[id] = newDevice(f, i, id), i
	}
	return f, nil
}

// IDs returns the device ids, in connect order.
func (f *Fleet) IDs() []string { return f.ids }

// Connect starts every device at the configured rate, at most
// ConnectParallel between their CONNECT and the end of their first setup
// (subscriptions, discovery, first heartbeat), and returns once every
// device has been through its first setup. A device whose connect fails
// keeps retrying in the background (see Stats); Connect then returns ctx's
// error when ctx ends first. Call it once.
func (f *Fleet) Connect(ctx context.Context) error {
	f.loops.Go(func() { f.sched.run(f.ctx, sweepInterval(f.cfg.Heartbeat), f.sweep) })
	sem := make(chan struct{}, f.cfg.ConnectParallel)
	pace := newPacer(f.cfg.ConnectRate)
	defer pace.stop()
	for _, d := range f.devices {
		if err := pace.wait(ctx); err != nil {
			return err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		f.loops.Go(func() { d.run(f.ctx, func() { <-sem }) })
	}
	return f.waitSetup(ctx)
}

func (f *Fleet) waitSetup(ctx context.Context) error {
	for _, d := range f.devices {
		select {
		case <-d.setupDone:
		case <-ctx.Done():
			return fmt.Errorf("fleetsim: %d of %d devices set up: %w", f.Stats().Ready, len(f.devices), context.Cause(ctx))
		}
	}
	return nil
}

// sweepInterval is how often the scheduler fails overdue acknowledgements:
// a tenth of their timeout (one heartbeat interval), within [10 ms, 1 s].
func sweepInterval(heartbeat time.Duration) time.Duration {
	return min(max(heartbeat/10, schedSlot), time.Second)
}

// sweep fails the acknowledgements overdue at now, every device's.
func (f *Fleet) sweep(now time.Time) {
	for _, d := range f.devices {
		d.c.expire(now)
	}
}

// Close stops heartbeats and reconnects, publishes every connected
// device's offline status, disconnects them all (their sessions stay
// with the broker) and waits for every goroutine of the fleet.
func (f *Fleet) Close() {
	f.closeOnce.Do(func() {
		f.cancel()
		f.goodbye()
		f.loops.Wait()   // each device's reader ends with its connection
		f.answers.Wait() // and hands out no more answers
	})
}

// goodbye says goodbye on every device, ConnectParallel at a time.
func (f *Fleet) goodbye() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(f.cfg.ConnectParallel, 1))
	for _, d := range f.devices {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d.goodbye()
		})
	}
	wg.Wait()
}

// recordStart notes that a start of task (attempt) reached device, and
// reports whether it is the first to reach it (not a re-send).
func (f *Fleet) recordStart(task string, attempt int, device string) (first bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.starts[task]
	first = !slices.Contains(prev, Delivery{Device: device, Attempt: attempt})
	if !first {
		f.stats.duplicates.Add(1)
	}
	f.starts[task] = append(prev, Delivery{Device: device, Attempt: attempt})
	f.stats.starts.Add(1)
	return first
}

// Deliveries returns where the starts of task went, in arrival order.
func (f *Fleet) Deliveries(task string) []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.starts[task]...)
}

// Subscribed reports whether the broker accepted device id's subscription
// to its starts, without which none reaches it; false for an id not in
// the fleet.
func (f *Fleet) Subscribed(id string) bool {
	i, ok := f.index[id]
	return ok && f.devices[i].subscribed.Load()
}

// Heartbeats is the latency of heartbeat acknowledgements: from the
// publish to the broker's PUBACK. Reset it to start a window.
func (f *Fleet) Heartbeats() *Latency { return &f.acks }

// pacer lets n events a second through; rate 0 lets everything through.
type pacer struct{ t *time.Ticker }

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{t: time.NewTicker(max(time.Duration(float64(time.Second)/rate), time.Microsecond))}
}

func (p *pacer) wait(ctx context.Context) error {
	if p.t == nil {
		return context.Cause(ctx)
	}
	select {
	case <-p.t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (p *pacer) stop() {
	if p.t != nil {
		p.t.Stop()
	}
}
