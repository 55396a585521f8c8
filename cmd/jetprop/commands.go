package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

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
			invokeCommand(),
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
		help: "Print the version of this jetprop binary (with the VCS revision it was built from, -dirty when its tree had changes), its Go version and platform. 'jetprop --version' prints the same.",
		setup: func(_ *flagSet, e *env) action {
			return func(context.Context, []string) error { return printVersion(e.stdout) }
		},
	}
}

// version is app.BuildVersion: the build-time version, else the module's,
// with the VCS revision.
func version() string { return app.BuildVersion() }

// printVersion writes what `jetprop version` and `jetprop --version` print.
func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "jetprop %s %s %s/%s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
