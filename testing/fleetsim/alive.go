package fleetsim

import (
	"context"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
)

// alivePoll is how often WaitAlive asks the API.
const alivePoll = time.Second

// AliveReport is how many devices the API showed alive, and when.
type AliveReport struct {
	Alive    int      `json:"alive"`
	Took     Duration `json:"took"`
	TimedOut bool     `json:"timed_out,omitempty"`
	Err      string   `json:"error,omitempty"` // the last failed request, if any
}

// WaitAlive pages through GET /proplets until every device of ids shows
// alive, or timeout.
func WaitAlive(ctx context.Context, c *client.Client, ids []string, timeout time.Duration) AliveReport {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var rep AliveReport
	for {
		n, err := countAlive(ctx, c, want)
		if err == nil {
			rep.Alive = n
		} else if ctx.Err() == nil {
			rep.Err = err.Error()
		}
		rep.Took = Duration(time.Since(start))
		if rep.Alive == len(ids) {
			return rep
		}
		select {
		case <-ctx.Done():
			rep.TimedOut = true
			return rep
		case <-time.After(alivePoll):
		}
	}
}

// countAlive counts the devices of want that GET /proplets shows alive.
func countAlive(ctx context.Context, c *client.Client, want map[string]bool) (int, error) {
	n := 0
	err := eachProplet(ctx, c, func(p httpapi.Proplet) {
		if p.Alive && want[p.ID] {
			n++
		}
	})
	return n, err
}

// eachProplet pages through GET /proplets.
func eachProplet(ctx context.Context, c *client.Client, fn func(httpapi.Proplet)) error {
	for offset := 0; ; {
		page, err := c.ListProplets(ctx, offset, httpapi.MaxLimit)
		if err != nil {
			return err
		}
		for _, p := range page.Proplets {
			fn(p)
		}
		offset += len(page.Proplets)
		if len(page.Proplets) == 0 || offset >= page.Total {
			return nil
		}
	}
}
