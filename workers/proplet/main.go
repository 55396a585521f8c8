package proplet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

const usageText = `proplet runs WebAssembly tasks on this device for a jetprop or Propeller
manager, speaking Propeller's MQTT protocol.

It connects to the broker at -mqtt-address as client -entity-id (username the
same, password -api-key) with a persistent session, announces itself on
m/<tenant>/c/<channel>/control/proplet/create, heartbeats on .../alive every
-liveliness, runs the tasks started on .../control/manager/start (modules
inline, from an http(s) image_url, or in chunks over .../registry/proplet and
.../registry/server, cached on disk by digest; in-process wazero or
-external-runtime) and publishes results on .../control/proplet/results.

Every flag defaults to the PROPLET_* environment variable named in its help.

Usage: proplet [flags]

Flags:
`

// Main is the proplet command: it parses args (flags over PROPLET_*
// variables), logs to stderr at the configured level and runs until ctx is
// done. -h prints help and returns nil.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("proplet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("proplet: unexpected arguments %q (see -h)", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	p, err := New(cfg, newLogger(stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.TrimSpace(level))) // checked by Validate
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})).With(keyComponent, "proplet")
}
