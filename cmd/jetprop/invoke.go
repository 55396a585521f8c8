package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine"
)

func invokeCommand() *command {
	return &command{
		name: "invoke", args: "<name:tag | task id> <function> [inputs...]", minArgs: 2, maxArgs: -1,
		summary: "call a function of a catalog module or a latent task and print its result",
		help: `Call a function once and print its result, synchronously. The first
argument is a catalog reference (name:tag, or a name in the catalog for its
latest tag): the server deploys the module as a latent task on its first
call and keeps it warm for the next ones (POST /functions/{name}/invoke).
Anything else is the id of a latent task you started (POST
/tasks/{id}/invoke). Exits 1 with the reason when the call fails.

Example: jetprop artifact push examples/add/add.wasm --name add:1
         jetprop invoke add:1 add 10 20`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var env map[string]string
			var stdin string
			var timeout time.Duration
			fs.Pairs(&env, "env", "add `KEY=VALUE` to the function's WASI environment for this call (repeatable)")
			fs.String(&stdin, "stdin", "", "`FILE` to give the call as standard input, - for this process's stdin")
			fs.Duration(&timeout, "timeout", 0, fmt.Sprintf("wait at most this `duration` for the answer, up to %s (0: the server's default, %s)", engine.MaxInvokeTimeout, engine.DefaultInvokeTimeout))
			return func(ctx context.Context, args []string) error {
				if timeout < 0 || timeout > engine.MaxInvokeTimeout {
					return fmt.Errorf("--timeout %s: want 0 to %s", timeout, engine.MaxInvokeTimeout)
				}
				req := httpapi.InvokeRequest{Function: args[1], Inputs: args[2:], Env: env, TimeoutMS: timeout.Milliseconds()}
				var err error
				if req.Stdin, err = readInput(e, stdin); err != nil {
					return err
				}
				ans, err := invoke(ctx, newClient(), args[0], req)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(e.stdout, ans.Results)
				return err
			}
		},
	}
}

// invoke calls the function route for a catalog reference (it holds ':',
// or names an artifact), the task route otherwise.
func invoke(ctx context.Context, c *client.Client, target string, req httpapi.InvokeRequest) (httpapi.InvokeAnswer, error) {
	if isCatalogRef(ctx, c, target) {
		return c.InvokeFunction(ctx, target, req)
	}
	return c.InvokeTask(ctx, target, req)
}

func isCatalogRef(ctx context.Context, c *client.Client, target string) bool {
	if strings.Contains(target, ":") {
		return true
	}
	_, err := c.GetArtifact(ctx, target)
	return err == nil
}
