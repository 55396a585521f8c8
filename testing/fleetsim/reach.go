package fleetsim

import (
	"context"
	"sync"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine"
)

// reachPoll is how often Reach looks at the fleet and the API.
const reachPoll = 250 * time.Millisecond

// finalCount bounds the count of recorded results after the reach timeout.
const finalCount = 30 * time.Second

// maxMissing bounds the devices a ReachReport names.
const maxMissing = 20

// ReachReport says which devices can receive starts: one task per device,
// targeted at it.
type ReachReport struct {
	Targeted   int    `json:"targeted"`              // tasks created and started
	NotPlaced  int    `json:"not_placed"`            // devices the API would not create or start a task for
	PlaceError string `json:"place_error,omitempty"` // one of those refusals
	Reached    int    `json:"reached"`               // devices that received the start of their own task
	Foreign    int    `json:"foreign"`               // starts that reached a device other than their target
	Duplicates int    `json:"duplicates"`            // starts received more than once
	Recorded   int    `json:"recorded"`              // tasks the API shows completed
	Unsent     int    `json:"unsent"`                // tasks still scheduled at the timeout: the engine had not sent their start
	// MissingSubscribed counts the devices that did not receive their
	// start although the broker had accepted their subscription.
	MissingSubscribed int      `json:"missing_subscribed"`
	Missing           []string `json:"missing,omitempty"` // some devices that did not receive their start
	Took              Duration `json:"took"`
	TimedOut          bool     `json:"timed_out,omitempty"`
}

// Reach creates and starts one task per device of the fleet, targeted at
// it, then waits until every device has received its start and the API
// shows every result recorded, or cfg.ReachTimeout. Tasks that did not
// finish are left as they are (running tasks count on their device when
// the engine places the next ones: Run dispatches before it reaches).
func Reach(ctx context.Context, cfg RunConfig, f *Fleet) (*ReachReport, error) {
	start := time.Now()
	digest, err := uploadModule(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ReachTimeout)
	defer cancel()
	rep := &ReachReport{}
	targets := startTargeted(ctx, cfg, digest, f.IDs(), rep)
	rep.Targeted = len(targets)
	reachedAll := waitReached(ctx, f, targets)
	rep.TimedOut = !waitRecorded(ctx, cfg.API, targets, rep) || !reachedAll
	countDeliveries(f, targets, rep)
	rep.Took = Duration(time.Since(start))
	return rep, nil
}

// startTargeted creates and starts a task for every device, concurrency
// at a time, and returns the started tasks' targets by task id.
func startTargeted(ctx context.Context, cfg RunConfig, digest string, ids []string, rep *ReachReport) map[string]string {
	var mu sync.Mutex
	targets := make(map[string]string, len(ids))
	forEach(ctx, len(ids), cfg.Concurrency, func(i int) {
		id, err := createAndStart(ctx, cfg.API, taskRequest(cfg, digest, ids[i]))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rep.NotPlaced++
			rep.PlaceError = err.Error()
			return
		}
		targets[id] = ids[i]
	})
	return targets
}

func createAndStart(ctx context.Context, c *client.Client, req httpapi.TaskRequest) (string, error) {
	t, err := c.CreateTask(ctx, req)
	if err != nil {
		return "", err
	}
	if _, err := c.StartTask(ctx, t.ID); err != nil {
		return "", err
	}
	return t.ID, nil
}

// waitReached waits until every task's start reached its target.
func waitReached(ctx context.Context, f *Fleet, targets map[string]string) bool {
	return poll(ctx, reachPoll, func() bool {
		for task, dev := range targets {
			if !reached(f.Deliveries(task), dev) {
				return false
			}
		}
		return true
	})
}

func reached(ds []Delivery, dev string) bool {
	for _, d := range ds {
		if d.Device == dev {
			return true
		}
	}
	return false
}

// waitRecorded waits until the API shows every task completed, filling
// Recorded and Unsent, and reports whether they all did; it looks once
// more at the timeout, and only once when ctx has ended already.
func waitRecorded(ctx context.Context, c *client.Client, targets map[string]string, rep *ReachReport) bool {
	look := func(ctx context.Context) bool {
		n, err := countStates(ctx, c, targets)
		if err == nil {
			rep.Recorded, rep.Unsent = n[engine.TaskCompleted], n[engine.TaskScheduled]
		}
		return err == nil && rep.Recorded == len(targets)
	}
	done := ctx.Err() == nil && poll(ctx, time.Second, func() bool { return look(ctx) })
	if !done {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCount)
		defer cancel()
		look(cctx) // the state at the timeout
	}
	return done
}

// countStates pages through GET /tasks and counts the tasks of ids by
// state.
func countStates(ctx context.Context, c *client.Client, ids map[string]string) (map[engine.TaskState]int, error) {
	n := map[engine.TaskState]int{}
	for offset := 0; ; {
		page, err := c.ListTasks(ctx, offset, httpapi.MaxLimit)
		if err != nil {
			return n, err
		}
		for _, t := range page.Tasks {
			var state engine.TaskState
			if _, ok := ids[t.ID]; ok && state.UnmarshalText([]byte(t.Status)) == nil {
				n[state]++
			}
		}
		offset += len(page.Tasks)
		if len(page.Tasks) == 0 || offset >= page.Total {
			return n, nil
		}
	}
}

// countDeliveries fills Reached, Foreign, Duplicates and Missing.
func countDeliveries(f *Fleet, targets map[string]string, rep *ReachReport) {
	for task, dev := range targets {
		ds := f.Deliveries(task)
		own := 0
		for _, d := range ds {
			if d.Device == dev {
				own++
			} else {
				rep.Foreign++
			}
		}
		switch {
		case own == 0:
			if len(rep.Missing) < maxMissing {
				rep.Missing = append(rep.Missing, dev)
			}
			if f.Subscribed(dev) {
				rep.MissingSubscribed++
			}
		case own > 0:
			rep.Reached++
			rep.Duplicates += own - 1
		}
	}
}

// poll calls done every interval until it reports true (then poll does
// too) or ctx ends.
func poll(ctx context.Context, interval time.Duration, done func() bool) bool {
	for {
		if done() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
}

// forEach calls fn(i) for i in [0, n), conc at a time, until ctx ends.
func forEach(ctx context.Context, n, conc int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
}
