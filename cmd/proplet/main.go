// Command proplet is jetprop's edge worker: it runs WebAssembly tasks sent
// by a jetprop or Propeller manager over MQTT. Configure it with flags or
// the PROPLET_* environment variables; see proplet -h.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/jetprop/jetprop/cmd/internal/propletcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := propletcmd.Main(ctx, os.Args[1:], os.Stderr, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(1)
	}
}
