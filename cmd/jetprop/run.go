package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
)

// stopTimeout bounds the stop sent when run is interrupted.
const stopTimeout = 5 * time.Second

func runCommand() *command {
	return &command{
		name: "run", args: "<module.wasm> <function> [inputs...]", minArgs: 2, maxArgs: -1,
		summary: "run a wasm function on a proplet and print its result",
		help: `Create a task with the module inline, start it, wait for it to finish and
print its result: the function's return value for a core module, standard
output for a WASI command (function _start). Exits 1 with the task's error if
it failed. Interrupting run stops the task. Inputs that start with a dash are
arguments, not flags, when they are numbers; put others after --.

Example: jetprop run examples/add/add.wasm add 10 20`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var spec taskSpec
			var wait time.Duration
			spec.declare(fs)
			fs.Duration(&wait, "wait", 0, "give up waiting for the result after this `duration` (0: wait until the task ends)")
			return func(ctx context.Context, args []string) error {
				req, err := spec.request(e, args[1])
				if err != nil {
					return err
				}
				if req.File, err = os.ReadFile(args[0]); err != nil {
					return err
				}
				req.Inputs = args[2:]
				return runTask(ctx, newClient(), e, req, wait)
			}
		},
	}
}

// runTask creates and starts the task and prints its result.
func runTask(ctx context.Context, c *client.Client, e *env, req httpapi.TaskRequest, wait time.Duration) error {
	t, err := c.CreateTask(ctx, req)
	if err != nil {
		return err
	}
	if _, err := c.StartTask(ctx, t.ID); err != nil {
		if ctx.Err() != nil { // interrupted while the start was on its way: it may have landed
			return interrupted(ctx, c, t.ID)
		}
		return fmt.Errorf("start task %s: %w", t.ID, err)
	}
	r, err := waitFinished(ctx, c, t.ID, wait)
	if ctx.Err() != nil {
		return interrupted(ctx, c, t.ID)
	}
	if err != nil {
		return err
	}
	return reportResult(e.stdout, r)
}

// waitFinished waits until the task is terminal, or wait has passed when
// it is positive.
func waitFinished(ctx context.Context, c *client.Client, id string, wait time.Duration) (httpapi.Results, error) {
	if wait > 0 {
		return waitResults(ctx, c, id, wait)
	}
	for {
		r, err := c.Results(ctx, id, httpapi.MaxWait)
		if err != nil || r.Terminal() {
			return r, err
		}
	}
}

// interrupted stops the task the user gave up on.
func interrupted(ctx context.Context, c *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	_, err := c.StopTask(ctx, id)
	if err != nil && client.StatusCode(err) != http.StatusConflict { // it had just finished
		return fmt.Errorf("interrupted; stopping task %s: %w", id, err)
	}
	return errors.New("interrupted; task " + id + " stopped")
}
