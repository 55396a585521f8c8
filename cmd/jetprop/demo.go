package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/examples"
)

func demoCommand() *command {
	return &command{
		name: "demo", summary: "start a throwaway single box, run the examples on a local proplet, stop",
		help: `Start jetprop in this process on random ports with a temporary data
directory and one local proplet, run the example modules through the HTTP
API (a core-module export, a WASI command fed on stdin, a module stopped by
its timeout), print what happened and the events it left, then stop and
remove the data directory.`,
		setup: func(fs *flagSet, e *env) action {
			var keep bool
			fs.Bool(&keep, "keep", false, "keep the temporary data directory and print its path")
			return func(ctx context.Context, _ []string) error { return demo(ctx, e, keep) }
		},
	}
}

func demo(ctx context.Context, e *env, keep bool) error {
	dir, err := os.MkdirTemp("", "jetprop-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	cfg := app.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1, Tenant: app.DefaultTenant,
		Channel: app.DefaultChannel, Proplets: 1, Replicas: 1, MaxModule: 100 << 20, Liveness: 30 * time.Second, LogLevel: "warn",
	}
	a, err := app.Start(ctx, cfg, newLogger(e.stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(e.stdout, "jetprop demo: a single box in %s\n  http %s  mqtt %s\n", dir, a.HTTPURL(), a.MQTTURL())
	c := client.New(a.HTTPURL(), &http.Client{Timeout: time.Minute})
	id, err := demoWaitProplet(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "  proplet %s is alive\n\n", id)
	for _, step := range demoSteps() {
		if err := demoRun(ctx, e, c, step); err != nil {
			return err
		}
	}
	return demoEvents(ctx, e, c)
}

func demoWaitProplet(ctx context.Context, c *client.Client) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		l, err := c.ListProplets(ctx, 0, 10)
		if err == nil && len(l.Proplets) > 0 && l.Proplets[0].Alive {
			return l.Proplets[0].ID, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no local proplet came up: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type demoStep struct {
	title string
	req   httpapi.TaskRequest
}

func demoSteps() []demoStep {
	return []demoStep{
		{"add(10, 20), a core-module export", httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: []string{"10", "20"}}},
		{"uppercase, a WASI command reading stdin", httpapi.TaskRequest{Name: "_start", File: examples.Uppercase(), Stdin: []byte("hello from the edge")}},
		{"add with inputs that do not fit its i32 params", httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: []string{"ten", "20"}}},
	}
}

func demoRun(ctx context.Context, e *env, c *client.Client, s demoStep) error {
	start := time.Now()
	t, err := c.CreateTask(ctx, s.req)
	if err != nil {
		return err
	}
	if _, err := c.StartTask(ctx, t.ID); err != nil {
		return err
	}
	r, err := c.Results(ctx, t.ID, 30*time.Second)
	if err != nil {
		return err
	}
	outcome := fmt.Sprintf("result %s", r.Results)
	if r.Error != "" {
		outcome = "failed: " + r.Error
	}
	fmt.Fprintf(e.stdout, "▶ %s\n  task %s %s in %s\n  %s\n\n", s.title, t.ID, r.Status, time.Since(start).Round(time.Microsecond), outcome)
	return nil
}

func demoEvents(ctx context.Context, e *env, c *client.Client) error {
	counts := map[string]int{}
	var order []string
	err := c.Events(ctx, false, func(env events.Envelope) error {
		if counts[env.Type] == 0 {
			order = append(order, env.Type)
		}
		counts[env.Type]++
		return nil
	})
	if err != nil {
		return err
	}
	parts := make([]string, 0, len(order))
	for _, t := range order {
		parts = append(parts, fmt.Sprintf("%s ×%d", t, counts[t]))
	}
	fmt.Fprintf(e.stdout, "events in the log: %s\n(see them live with `jetprop events tail` against `jetprop up`)\n", strings.Join(parts, ", "))
	return nil
}
