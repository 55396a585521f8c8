// Command runner is a tiny external wasm runtime for tests of
// runtime.External: it runs a module with jetprop's wazero runtime.
//
//	runner <module.wasm> [inputs or args...]
//
// RUNNER_FUNCTION names the export (default: the runtime's fallbacks). The
// process environment, minus PATH and HOME, is the guest's environment, and
// stdin is the guest's stdin. The result goes to stdout; an error goes to
// stderr with exit code 1, or the guest's own exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jetprop/jetprop/workers/runtime"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: runner <module.wasm> [inputs...]")
		os.Exit(2)
	}
	out, err := run(os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		var exit *runtime.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		os.Exit(1)
	}
	fmt.Print(out)
}

func run(file string, args []string) (string, error) {
	module, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	rt, err := runtime.NewWazero(ctx, runtime.Options{})
	if err != nil {
		return "", err
	}
	defer rt.Close(ctx)
	return rt.Run(ctx, runtime.Job{
		Module: module, Function: os.Getenv("RUNNER_FUNCTION"),
		Inputs: args, Args: args, Env: guestEnv(), Stdin: stdin,
	})
}

func guestEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k != "PATH" && k != "HOME" && k != "RUNNER_FUNCTION" {
			env[k] = v
		}
	}
	return env
}
