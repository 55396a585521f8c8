package fleetsim

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/jetprop/jetprop/engine"
)

// DispatchReport is the dispatch test: tasks not targeted, placed by the
// engine, concurrency at a time, each created, started and waited for
// through the API, in one round or more of Tasks tasks each.
type DispatchReport struct {
	Tasks       int `json:"tasks"` // per round
	Concurrency int `json:"concurrency"`
	// RoundRates is the completed tasks per second of each round; with
	// more than one round PerSecond is their median, steadier than one
	// round of a second or two (a garbage collection, a burst of
	// heartbeats).
	RoundRates []float64 `json:"round_rates,omitempty"`
	Completed  int       `json:"completed"`
	Failed     int       `json:"failed"` // finished, not completed
	Stuck      int       `json:"stuck"`  // started, not finished within the task wait
	// Of the stuck tasks: still scheduled (the engine had not sent the
	// start), and placed on a device whose subscription to starts the
	// broker refused (the start cannot reach it).
	StuckScheduled    int      `json:"stuck_scheduled"`
	StuckUnsubscribed int      `json:"stuck_unsubscribed"`
	Errors            int      `json:"errors"`                 // the API refused to create or start one
	Err               string   `json:"error,omitempty"`        // one of those refusals
	NotRun            int      `json:"not_run,omitempty"`      // left when the dispatch timeout passed
	Took              Duration `json:"took"`                   // all rounds
	PerSecond         float64  `json:"tasks_per_second"`       // completed tasks per second (the median round)
	Latency           Summary  `json:"latency"`                // create to result, completed tasks
	Backlog           *Backlog `json:"edge_backlog,omitempty"` // device messages waiting for the engine
}

// Dispatch runs cfg.Rounds rounds (at least one) of cfg.Tasks tasks each,
// cfg.Concurrency at a time: create, start, wait for the result (at most
// cfg.TaskWait). The whole test stops after cfg.DispatchTimeout. The
// fleet tells which devices can receive starts.
func Dispatch(ctx context.Context, cfg RunConfig, f *Fleet) (*DispatchReport, error) {
	digest, err := uploadModule(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.DispatchTimeout)
	defer cancel()
	rep := &DispatchReport{Tasks: cfg.Tasks, Concurrency: cfg.Concurrency}
	var mu sync.Mutex
	var lat Latency
	backlog := watchBacklog(ctx, cfg.Backlog)
	start := time.Now()
	ran := 0
	for range max(cfg.Rounds, 1) {
		if ctx.Err() != nil {
			break
		}
		roundStart, completed := time.Now(), rep.Completed
		forEach(ctx, cfg.Tasks, cfg.Concurrency, func(int) {
			d, outcome, err := dispatchOne(ctx, cfg, digest, f)
			mu.Lock()
			defer mu.Unlock()
			ran++
			rep.count(outcome, err)
			if outcome == outcomeCompleted {
				lat.Add(d)
			}
		})
		rate := float64(rep.Completed-completed) / time.Since(roundStart).Seconds()
		rep.RoundRates = append(rep.RoundRates, rate)
	}
	elapsed := time.Since(start)
	rep.Backlog = backlog.stop()
	rep.NotRun = cfg.Tasks*max(cfg.Rounds, 1) - ran
	rep.Took, rep.Latency = Duration(elapsed), lat.Summary()
	rep.PerSecond = median(rep.RoundRates)
	return rep, nil
}

// median is the middle of xs (the mean of the two middle ones for an even
// count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

type outcome int

const (
	outcomeError outcome = iota
	outcomeCompleted
	outcomeFailed
	outcomeStuck             // running on a device that can receive starts
	outcomeStuckScheduled    // the engine had not sent the start
	outcomeStuckUnsubscribed // on a device that cannot receive starts
)

func (r *DispatchReport) count(o outcome, err error) {
	switch o {
	case outcomeCompleted:
		r.Completed++
	case outcomeFailed:
		r.Failed++
	case outcomeStuck:
		r.Stuck++
	case outcomeStuckScheduled:
		r.Stuck++
		r.StuckScheduled++
	case outcomeStuckUnsubscribed:
		r.Stuck++
		r.StuckUnsubscribed++
	default:
		r.Errors++
		r.Err = err.Error()
	}
}

// dispatchOne creates, starts and waits for one task.
func dispatchOne(ctx context.Context, cfg RunConfig, digest string, f *Fleet) (time.Duration, outcome, error) {
	start := time.Now()
	id, err := createAndStart(ctx, cfg.API, taskRequest(cfg, digest, ""))
	if err != nil {
		return 0, outcomeError, err
	}
	res, err := cfg.API.Results(ctx, id, cfg.TaskWait)
	switch {
	case err != nil || !res.Terminal():
		return 0, whyStuck(ctx, cfg, f, id), nil
	case res.Status != engine.TaskCompleted.String():
		return 0, outcomeFailed, nil
	}
	return time.Since(start), outcomeCompleted, nil
}

// whyStuck tells a task the engine has not sent from one on a device
// that cannot receive it.
func whyStuck(ctx context.Context, cfg RunConfig, f *Fleet, id string) outcome {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCount)
	defer cancel()
	t, err := cfg.API.GetTask(ctx, id)
	switch {
	case err != nil:
		return outcomeStuck
	case t.Status == engine.TaskScheduled.String():
		return outcomeStuckScheduled
	case !f.Subscribed(t.PropletID):
		return outcomeStuckUnsubscribed
	}
	return outcomeStuck
}
