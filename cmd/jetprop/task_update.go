package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
)

func taskUpdateCommand() *command {
	return &command{
		name: "update", args: "<id>", summary: "change a task that is not running", minArgs: 1, maxArgs: 1,
		help: `Change a task that is pending or finished (PUT /tasks/{id}, Propeller's
update): only the flags given are sent, and each replaces that field of the
task; the others stay. A task that failed or was stopped may then be
started again with what it now holds. A scheduled or running task is refused (stop it first). The flags
are task create's that an update may change; daemon, proplet, broadcast and
the schedule stay as created (delete the task and create it again). An empty
value changes nothing (an update cannot clear a field). A --file larger than
the API's inline limit is uploaded after the other changes. Prints the
task's id, or the task as JSON with -o json.

Example: jetprop task update 01J... --inputs 5,6 --priority 90`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var f updateFlags
			f.declare(fs)
			format := outputFlag(fs)
			return func(ctx context.Context, args []string) error {
				t, err := f.update(ctx, newClient(), e, args[0])
				if err != nil {
					return err
				}
				if *format == formatJSON {
					return printJSON(e.stdout, t)
				}
				_, err = fmt.Fprintf(e.stdout, "%s updated (%s)\n", t.ID, t.Status)
				return err
			}
		},
	}
}

// updateFlags are the flags of task update: task create's that PUT
// /tasks/{id} applies.
type updateFlags struct {
	name, file, image, inputs, cliArgs, stdin string
	env, metadata                             map[string]string
	timeout                                   time.Duration
	memoryMiB, priority                       int
}

func (f *updateFlags) declare(fs *flagSet) {
	fs.String(&f.name, "name", "", "the exported `function` to call")
	fs.String(&f.file, "file", "", "a new wasm module `FILE`")
	fs.String(&f.image, "image", "", "a new module `ref`: name:tag or sha256:<hex> of a stored module, an OCI reference or an http(s) URL")
	fs.String(&f.inputs, "inputs", "", "comma-separated `inputs` of the function, e.g. 10,20")
	fs.String(&f.cliArgs, "cli-args", "", "comma-separated `arguments` for an external runtime")
	fs.Pairs(&f.env, "env", "the task's WASI environment, `KEY=VALUE` (repeatable: the pairs given replace the whole environment); "+
		"a value may refer to a secret, 'K=${secret:NAME}'")
	fs.Duration(&f.timeout, "timeout", 0, "stop the task on the proplet after this `duration`, 1ms to 720h")
	fs.Int(&f.memoryMiB, "memory", 0, "limit the module's memory to this many `MiB`, 1 to 4096")
	fs.String(&f.stdin, "stdin", "", "`FILE` to give the task as standard input, - for this process's stdin")
	fs.Pairs(&f.metadata, "metadata", "the task's labels, `KEY=VALUE` (repeatable: the pairs given replace all of them)")
	fs.Int(&f.priority, "priority", 0, "the task's `priority`, 1 to 100")
}

// errNoChange refuses an update that would send nothing.
var errNoChange = errors.New("nothing to update: give at least one of --name, --file, --image, --inputs, --cli-args, --env, " +
	"--timeout, --memory, --stdin, --metadata, --priority")

// update sends the flags given; a module above httpapi.MaxInlineModule
// goes by the upload route after the PUT of the rest.
func (f *updateFlags) update(ctx context.Context, c *client.Client, e *env, id string) (httpapi.Task, error) {
	req, err := f.request(e)
	if err != nil {
		return httpapi.Task{}, err
	}
	var module []byte
	if f.file != "" {
		if module, err = os.ReadFile(f.file); err != nil {
			return httpapi.Task{}, err
		}
	}
	if len(module) <= httpapi.MaxInlineModule {
		req.File = module
		return c.UpdateTask(ctx, id, req)
	}
	if !isEmptyUpdate(req) {
		if _, err := c.UpdateTask(ctx, id, req); err != nil {
			return httpapi.Task{}, err
		}
	}
	return c.UploadModule(ctx, id, bytes.NewReader(module))
}

// request is the PUT body of the flags given, the module aside.
func (f *updateFlags) request(e *env) (httpapi.TaskRequest, error) {
	spec := taskSpec{timeout: f.timeout, memoryMiB: f.memoryMiB}
	if err := spec.check(); err != nil {
		return httpapi.TaskRequest{}, err
	}
	if f.file != "" && f.image != "" {
		return httpapi.TaskRequest{}, errors.New("give --file or --image, not both")
	}
	req := httpapi.TaskRequest{
		Name: f.name, ImageURL: f.image, Inputs: splitList(f.inputs), CLIArgs: splitList(f.cliArgs), Env: f.env,
		TimeoutMS: f.timeout.Milliseconds(), MemoryMiB: f.memoryMiB,
	}
	(&schemaFlags{metadata: f.metadata}).apply(&req)
	req.Priority = f.priority
	if len(req.Env) == 0 {
		req.Env = nil
	}
	var err error
	if req.Stdin, err = readInput(e, f.stdin); err != nil {
		return req, err
	}
	if f.file == "" && isEmptyUpdate(req) {
		return req, errNoChange
	}
	return req, nil
}

// isEmptyUpdate says whether a PUT of req would change nothing.
func isEmptyUpdate(req httpapi.TaskRequest) bool {
	return req.Name == "" && req.ImageURL == "" && len(req.File) == 0 && len(req.Inputs) == 0 && len(req.CLIArgs) == 0 &&
		len(req.Env) == 0 && req.TimeoutMS == 0 && req.MemoryMiB == 0 && len(req.Stdin) == 0 && len(req.Metadata) == 0 &&
		req.Priority == 0
}
