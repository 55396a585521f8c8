package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/workers/proplet"
)

// The commands that run jetprop parse their own flags (app.Config's).

func runUp(ctx context.Context, e *env, args []string) error {
	return serve(ctx, e, "up", args)
}

func runServer(ctx context.Context, e *env, args []string) error {
	return serve(ctx, e, "server", args)
}

func runProplet(ctx context.Context, e *env, args []string) error {
	return proplet.Main(ctx, args, e.stderr)
}

// serve parses the server flags, starts jetprop and runs until ctx is done
// or a component fails.
func serve(ctx context.Context, e *env, name string, args []string) error {
	cfg, err := serverConfig(e, name, args)
	if err != nil {
		return err
	}
	a, err := app.Start(ctx, cfg, newLogger(e.stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(e.stdout, "jetprop %s %s ready\n  http    %s\n  nats    %s\n  mqtt    %s\n  data    %s\n  topics  m/%s/c/%s/...\n",
		name, version(), a.HTTPURL(), a.NATSURL(), a.MQTTURL(), cfg.DataDir, cfg.Tenant, cfg.Channel)
	select {
	case <-ctx.Done():
		fmt.Fprintln(e.stdout, "jetprop: shutting down")
		return nil
	case <-a.Failed():
		return a.Err()
	}
}

var serveHelp = map[string]string{
	"up": `Run jetprop on one box: an embedded nats-server (JetStream on disk under
--data, the NATS port, the MQTT port proplets connect to), the engine, the
HTTP API and --proplets local proplets, until interrupted.`,
	"server": `Run a jetprop server: the engine and the HTTP API, with an embedded
nats-server or, with --nats-url, an existing NATS server (JetStream and MQTT
enabled). Proplets connect to the MQTT port. Runs until interrupted.`,
}

// serverConfig parses the flags of up or server.
func serverConfig(e *env, name string, args []string) (app.Config, error) {
	fs := flag.NewFlagSet("jetprop "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg app.Config
	cfg.RegisterFlags(fs, name == "up")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stdout, "Usage: jetprop %s [flags]\n\n%s\n\nFlags:\n", name, serveHelp[name])
			(&flagSet{fs: fs}).printDefaults(e.stdout)
		}
		return cfg, usageErr(name, err)
	}
	if fs.NArg() > 0 {
		return cfg, usageErr(name, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		return cfg, usageErr(name, err)
	}
	return cfg, cfg.Validate()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	l, _ := parseLevel(level) // checked by serverConfig
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
