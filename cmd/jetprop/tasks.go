package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine"
)

func taskCommand() *command {
	return &command{
		name: "task", summary: "create, start, stop, update, inspect and delete tasks",
		help: "Manage tasks: a task is one call of a WebAssembly function on a proplet.",
		sub: []*command{
			taskCreateCommand(), taskGetCommand(), taskListCommand(), taskStartCommand(),
			taskStopCommand(), taskResultsCommand(), taskDeleteCommand(), taskUploadCommand(), taskUpdateCommand(),
		},
	}
}

// taskSpec is what task create and run are told about the task to make.
type taskSpec struct {
	env       map[string]string
	proplet   string
	timeout   time.Duration
	memoryMiB int
	stdin     string
}

func (s *taskSpec) declare(fs *flagSet) {
	fs.Pairs(&s.env, "env", "set `KEY=VALUE` in the task's WASI environment (repeatable; the env var takes K=V,K=V); "+
		"a value may refer to a secret, 'K=${secret:NAME}' (in single quotes, away from the shell)")
	fs.String(&s.proplet, "proplet", "", "run on the proplet with this `ID` only")
	fs.Duration(&s.timeout, "timeout", 0, "stop the task on the proplet after this `duration`, at most 720h "+
		"(0: the proplet's default, 60s unless its --task-timeout says otherwise; a --daemon task has none)")
	fs.Int(&s.memoryMiB, "memory", 0, "limit the module's memory to this many `MiB`, at most 4096, wasm32's maximum "+
		"(0: the proplet's default, 256 unless its --memory-mib says otherwise)")
	fs.String(&s.stdin, "stdin", "", "`FILE` to give the task as standard input, - for this process's stdin")
}

// check refuses limits the server would refuse, before reading any file.
func (s *taskSpec) check() error {
	switch {
	case s.timeout < 0 || (s.timeout > 0 && s.timeout < time.Millisecond):
		return fmt.Errorf("--timeout %s: want 0 (the proplet's default) or at least 1ms", s.timeout)
	case s.timeout > engine.MaxTaskTimeout:
		return fmt.Errorf("--timeout %s: above the maximum of %s (a task that runs until stopped is a --daemon)", s.timeout, engine.MaxTaskTimeout)
	case s.memoryMiB < 0 || s.memoryMiB > engine.MaxTaskMemoryMiB:
		return fmt.Errorf("--memory %d: want 0 (the proplet's default) to %d MiB, wasm32's maximum", s.memoryMiB, engine.MaxTaskMemoryMiB)
	}
	return nil
}

// request builds the API request from the spec.
func (s *taskSpec) request(e *env, name string) (httpapi.TaskRequest, error) {
	if err := s.check(); err != nil {
		return httpapi.TaskRequest{}, err
	}
	req := httpapi.TaskRequest{
		Name: name, Env: s.env, PropletID: s.proplet,
		TimeoutMS: s.timeout.Milliseconds(), MemoryMiB: s.memoryMiB,
	}
	if len(req.Env) == 0 {
		req.Env = nil
	}
	var err error
	req.Stdin, err = readInput(e, s.stdin)
	return req, err
}

// readInput reads FILE, or stdin for "-", or nothing for "".
func readInput(e *env, name string) ([]byte, error) {
	switch name {
	case "":
		return nil, nil
	case "-":
		return io.ReadAll(e.stdin)
	}
	return os.ReadFile(name)
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func taskCreateCommand() *command {
	return &command{
		name: "create", summary: "create a task and print its id", maxArgs: 0,
		help: `Create a pending task and print its id. Give the module with --file (sent
inline), or with --image: a module pushed with 'jetprop artifact push'
(name:tag or sha256:<hex>), an OCI reference or an http(s) URL; or upload it
later with 'jetprop task upload'. Start it with 'jetprop task start <id>'.

Example: jetprop task create --name add --file examples/add/add.wasm --inputs 10,20`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var f createFlags
			f.declare(fs)
			return func(ctx context.Context, _ []string) error {
				req, err := f.request(e)
				if err != nil {
					return err
				}
				t, err := newClient().CreateTask(ctx, req)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(e.stdout, t.ID)
				return err
			}
		},
	}
}

// createFlags are the flags of task create.
type createFlags struct {
	taskSpec
	schema                             schemaFlags
	name, file, image, inputs, cliArgs string
	daemon                             bool
}

func (f *createFlags) declare(fs *flagSet) {
	fs.String(&f.name, "name", "", "the exported `function` to call (required)")
	fs.String(&f.file, "file", "", "the wasm module `FILE`, sent inline")
	fs.String(&f.image, "image", "", "a stored module (`ref` name:tag or sha256:<hex>, see 'jetprop artifact'), or an OCI reference or http(s) URL the proplet fetches")
	fs.String(&f.inputs, "inputs", "", "comma-separated `inputs` of the function, e.g. 10,20")
	fs.String(&f.cliArgs, "cli-args", "", "comma-separated `arguments` for an external runtime")
	fs.Bool(&f.daemon, "daemon", false, "a long-running task: it runs until stopped")
	f.taskSpec.declare(fs)
	f.schema.declare(fs)
}

func (f *createFlags) request(e *env) (httpapi.TaskRequest, error) {
	if f.name == "" {
		return httpapi.TaskRequest{}, fmt.Errorf("--name is required (the exported function to call)")
	}
	req, err := f.taskSpec.request(e, f.name)
	if err != nil {
		return req, err
	}
	req.ImageURL, req.Inputs, req.CLIArgs, req.Daemon = f.image, splitList(f.inputs), splitList(f.cliArgs), f.daemon
	f.schema.apply(&req)
	if f.file != "" {
		req.File, err = os.ReadFile(f.file)
	}
	return req, err
}

// idCommand is a task command taking one task id.
func idCommand(name, summary, help string, do func(ctx context.Context, c *client.Client, e *env, id string) error) *command {
	return &command{
		name: name, args: "<id>", summary: summary, help: help, minArgs: 1, maxArgs: 1,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			return func(ctx context.Context, args []string) error { return do(ctx, newClient(), e, args[0]) }
		},
	}
}

func taskGetCommand() *command {
	return idCommand("get", "print a task as JSON", "Print the task with this id as JSON (Propeller's field names plus jetprop's).",
		func(ctx context.Context, c *client.Client, e *env, id string) error {
			t, err := c.GetTask(ctx, id)
			if err != nil {
				return err
			}
			return printJSON(e.stdout, t)
		})
}

func taskStartCommand() *command {
	return idCommand("start", "start a task on a proplet", "Place the task's next attempt on an alive proplet (its --proplet if it was given one) and print where it went.",
		func(ctx context.Context, c *client.Client, e *env, id string) error {
			t, err := c.StartTask(ctx, id)
			if err != nil {
				return err
			}
			if t.Broadcast {
				_, err = fmt.Fprintf(e.stdout, "%s %s on every alive proplet (run %d)\n", t.ID, t.Status, t.Attempt)
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s %s on %s (attempt %d)\n", t.ID, t.Status, t.PropletID, t.Attempt)
			return err
		})
}

func taskStopCommand() *command {
	return idCommand("stop", "stop a scheduled or running task", "Stop the task's current attempt; the task ends as stopped.",
		func(ctx context.Context, c *client.Client, e *env, id string) error {
			t, err := c.StopTask(ctx, id)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s %s\n", t.ID, t.Status)
			return err
		})
}

func taskDeleteCommand() *command {
	return idCommand("delete", "delete a task that is not running", "Delete the task from every view. A scheduled or running task must be stopped first.",
		func(ctx context.Context, c *client.Client, e *env, id string) error {
			if err := c.DeleteTask(ctx, id); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "%s deleted\n", id)
			return err
		})
}

func taskListCommand() *command {
	return &command{
		name: "list", summary: "list tasks", maxArgs: 0,
		help: "List tasks in creation order: a table of id, name, status, proplet, attempt and last update, or the API's JSON page with -o json; --metadata KEY=VALUE keeps the tasks labelled so.",
		setup: func(fs *flagSet, e *env) action {
			var meta map[string]string
			fs.Pairs(&meta, "metadata", "list only the tasks whose metadata has `KEY=VALUE` (repeatable: all must hold)")
			return listAction(fs, e, "tasks", func(c *client.Client, ctx context.Context, offset, limit int) (httpapi.TaskList, error) {
				return c.ListTasksWithMetadata(ctx, offset, limit, meta)
			}, taskTable)
		},
	}
}

func taskTable(w io.Writer, page httpapi.TaskList) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tPROPLET\tATTEMPT\tUPDATED")
	for _, t := range page.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, t.Name, t.Status, orDash(t.PropletID), t.Attempt, stamp(t.UpdatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown := page.Offset + len(page.Tasks); shown < page.Total {
		_, err := fmt.Fprintf(w, "(%d of %d tasks; more with --offset %d)\n", len(page.Tasks), page.Total, shown)
		return err
	}
	return nil
}

func taskResultsCommand() *command {
	return &command{
		name: "results", args: "<id>", summary: "print a task's result", minArgs: 1, maxArgs: 1,
		help: `Print the task's result: the text a core-module call or WASI command
returned, or JSON for other results. With --wait, wait up to that long for the
task to finish. Exits 1 if the task failed or was stopped, or has not finished.
With -o json, print the API's results object whatever the state.`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var wait time.Duration
			fs.Duration(&wait, "wait", 0, "wait up to this `duration` for the task to finish")
			format := outputFlag(fs)
			return func(ctx context.Context, args []string) error {
				r, err := waitResults(ctx, newClient(), args[0], wait)
				if err != nil {
					return err
				}
				if *format == formatJSON {
					return printJSON(e.stdout, r)
				}
				return reportResult(e.stdout, r)
			}
		},
	}
}

// waitResults asks for the results until the task is terminal or wait has
// passed (one request when wait is 0); the server bounds each request.
func waitResults(ctx context.Context, c *client.Client, id string, wait time.Duration) (httpapi.Results, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := c.Results(ctx, id, min(time.Until(deadline), httpapi.MaxWait))
		if err != nil || r.Terminal() || !time.Now().Before(deadline) {
			return r, err
		}
	}
}

// reportResult prints a completed task's result, or says why there is none.
func reportResult(w io.Writer, r httpapi.Results) error {
	switch r.Status {
	case "completed":
		return printResult(w, r.Results)
	case "failed":
		return fmt.Errorf("task %s failed: %s", r.ID, r.Error)
	case "stopped":
		return fmt.Errorf("task %s was stopped: %s", r.ID, r.Error)
	}
	return fmt.Errorf("task %s is %s: no result yet (wait with --wait)", r.ID, r.Status)
}

func taskUploadCommand() *command {
	return &command{
		name: "upload", args: "<id> <module.wasm>", summary: "upload a task's module", minArgs: 2, maxArgs: 2,
		help: "Upload the wasm module to a task that is not running (streamed, for modules too large to send inline) and print its digest.",
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			return func(ctx context.Context, args []string) error {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				t, err := newClient().UploadModule(ctx, args[0], f)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s %s (%d bytes)\n", t.ID, t.Module, t.ModuleSize)
				return err
			}
		},
	}
}
