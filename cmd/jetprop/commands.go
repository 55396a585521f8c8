package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
)

// root is the jetprop command tree.
func root() *command {
	return &command{
		help: `jetprop orchestrates WebAssembly tasks and workflows on edge devices
("proplets") over Propeller's MQTT protocol, with every fact kept as an event
in NATS JetStream.

Start a single box with 'jetprop up', then use the client commands (run,
task, workflow, artifact, proplets, events, token, secret) against its HTTP API, given by --server or
JETPROP_SERVER (default ` + defaultServer + `), with the API token in JETPROP_TOKEN
when the server runs with --auth on. Every flag can also be set through the
environment variable its help names.`,
		sub: []*command{
			{name: "up", summary: "run a single-box jetprop: server, embedded NATS and MQTT, local proplets", raw: runUp},
			{name: "server", summary: "run a jetprop server (engine, HTTP API, embedded or external NATS)", raw: runServer},
			{name: "proplet", summary: "run a proplet (edge worker) in this process", raw: runProplet},
			proxyCommand(),
			runCommand(),
			taskCommand(),
			workflowCommand(),
			artifactCommand(),
			propletsCommand(),
			devicesCommand(),
			eventsCommand(),
			tokenCommand(),
			certsCommand(),
			secretCommand(),
			simCommand(),
			demoCommand(),
			versionCommand(),
		},
	}
}

func versionCommand() *command {
	return &command{
		name: "version", summary: "print jetprop's version",
		help: "Print the version of this jetprop binary, its Go version and platform.",
		setup: func(_ *flagSet, e *env) action {
			return func(context.Context, []string) error {
				_, err := fmt.Fprintf(e.stdout, "jetprop %s %s %s/%s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return err
			}
		},
	}
}

// version is app.Version as set at build time, else the module version.
func version() string {
	if app.Version != "dev" {
		return app.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return app.Version
}
