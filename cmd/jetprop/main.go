// Command jetprop runs jetprop (up, server, proplet) and is the client of
// its HTTP API (run, task, workflow, artifact, proplets, events). See jetprop --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookup: os.LookupEnv}
	code := root().execute(ctx, e, "", os.Args[1:])
	stop()
	os.Exit(code)
}
