package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine"
)

func workflowCommand() *command {
	return &command{
		name: "workflow", aliases: []string{"workflows", "wf"}, summary: "apply, inspect, watch and cancel workflows of steps",
		help: `Run workflows: steps (each one call of a wasm module on a proplet) with
dependencies, data passed from step to step, retries, timeouts and fan-out
over devices, declared in a YAML or JSON file. The file format is described
in docs/workflows.md; examples/workflows/pipeline.yaml is a complete one.

Example:
  id=$(jetprop workflow apply -f examples/workflows/pipeline.yaml)
  jetprop workflow watch "$id"`,
		sub: []*command{
			workflowApplyCommand(), workflowGetCommand(), workflowListCommand(),
			workflowWatchCommand(), workflowCancelCommand(),
		},
	}
}

func workflowApplyCommand() *command {
	return &command{
		name: "apply", summary: "create a workflow from a YAML or JSON file and print its id", maxArgs: 0,
		help: `Read a workflow spec (YAML or JSON; -f - reads stdin), check it, create
the workflow and print its id on stdout, and nothing else. A field the spec
does not have, a dependency cycle, a bad duration or cron expression is
refused before anything is sent, naming the file and the line where it can
be found; the server also refuses a step whose module is not stored (push it
first with 'jetprop artifact push').

With --watch, follow the workflow until it ends, printing each change on
stderr (stdout keeps the id alone), and exit 1 unless it completed.

Examples:
  jetprop workflow apply -f examples/workflows/pipeline.yaml
  id=$(jetprop workflow apply -f pipeline.yaml) && jetprop workflow watch "$id"
  generate-spec | jetprop workflow apply -f - --watch`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var file string
			var watch bool
			fs.String(&file, "file", "", "the workflow spec `FILE` (YAML or JSON), - for stdin (required)")
			fs.Alias("f", "file")
			fs.Bool(&watch, "watch", false, "follow the workflow until it ends (changes on stderr); exit 1 unless it completed")
			return func(ctx context.Context, _ []string) error {
				if file == "" {
					return usageErr("workflow apply", errors.New("-f FILE is required (- for stdin)"))
				}
				return applyWorkflow(ctx, newClient(), e, file, watch)
			}
		},
	}
}

func applyWorkflow(ctx context.Context, c *client.Client, e *env, file string, watch bool) error {
	spec, err := readSpec(e, file)
	if err != nil {
		return err
	}
	w, err := c.CreateWorkflow(ctx, spec)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(e.stdout, w.ID); err != nil || !watch {
		return err
	}
	return followWorkflow(ctx, c, e.stderr, w.ID)
}

func workflowGetCommand() *command {
	return &command{
		name: "get", args: "<id>", summary: "show a workflow: its state and a table of its steps", minArgs: 1, maxArgs: 1,
		help: `Show the workflow with this id: its name, state (and why it ended that
way), when it was created and finished, then one row per step: state,
attempt (of the most its retry policy allows), the device it ran on (one row
per device for a fan-out step), when the attempt started and finished, how
long it took, and its result (shortened to one line) or its error. With
--json (or -o json), print the API's JSON instead, result and spec in full.

Example: jetprop workflow get 01JB8Z6N1R9V0Q4Y7W2X3C5D6E`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			format := outputFlag(fs)
			var asJSON bool
			fs.Bool(&asJSON, "json", false, "print the workflow as JSON (same as -o json)")
			return func(ctx context.Context, args []string) error {
				c := newClient()
				w, err := c.GetWorkflow(ctx, args[0])
				switch {
				case err != nil:
					return err
				case asJSON || *format == formatJSON:
					return printJSON(e.stdout, w)
				}
				devices := deviceCache{}
				if err := devices.fill(ctx, c, w.Workflow); err != nil {
					return err
				}
				return printWorkflow(e.stdout, w.Workflow, devices, time.Now())
			}
		},
	}
}

func workflowListCommand() *command {
	return &command{
		name: "ls", aliases: []string{"list"}, summary: "list workflows, newest first", maxArgs: 0,
		help: `List workflows, newest first: a table of id, name, state, steps ended of
all, when each was created and how long it ran (or has been running), or the
API's JSON page with -o json.

Example: jetprop workflow ls --limit 10`,
		setup: func(fs *flagSet, e *env) action {
			return listAction(fs, e, "workflows", (*client.Client).ListWorkflows,
				func(w io.Writer, page httpapi.WorkflowList) error { return workflowTable(w, page, time.Now()) })
		},
	}
}

func workflowWatchCommand() *command {
	return &command{
		name: "watch", args: "<id>", summary: "follow a workflow live until it ends; exit 0 only if it completed", minArgs: 1, maxArgs: 1,
		help: `Follow the workflow: print where it stands, then one line per change as it
happens (a step started on a device, completed with its result, failed and
waits to be retried, skipped, a device of a fan-out step finished), until
the workflow ends. Exit 0 when it completed; exit 1 when it failed, was
cancelled or passed its deadline (the reason goes to stderr).

Example: jetprop workflow watch 01JB8Z6N1R9V0Q4Y7W2X3C5D6E && echo done`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			return func(ctx context.Context, args []string) error {
				return followWorkflow(ctx, newClient(), e.stdout, args[0])
			}
		},
	}
}

func workflowCancelCommand() *command {
	return &command{
		name: "cancel", args: "<id>", summary: "cancel a running workflow", minArgs: 1, maxArgs: 1,
		help: `Cancel the workflow: steps not started are skipped, running ones are
stopped on their devices, and the workflow ends as cancelled with the reason
given. A workflow that has ended already is left as it is (and said so).

Example: jetprop workflow cancel 01JB8Z6N1R9V0Q4Y7W2X3C5D6E --reason "wrong input"`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var reason string
			fs.String(&reason, "reason", "", "why, kept as the workflow's reason (default: the server's \"cancelled by a user\")")
			return func(ctx context.Context, args []string) error {
				w, err := newClient().CancelWorkflow(ctx, args[0], reason)
				if err != nil {
					return err
				}
				if w.State != engine.WorkflowCancelled {
					_, err = fmt.Fprintf(e.stdout, "%s had already ended: %s\n", w.ID, w.State)
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s cancelled\n", w.ID)
				return err
			}
		},
	}
}

// followWorkflow prints the workflow, then its changes as they happen,
// until it ends; the error says why unless it completed.
func followWorkflow(ctx context.Context, c *client.Client, out io.Writer, id string) error {
	var prev engine.Workflow
	devices := deviceCache{}
	for {
		aw, err := c.WatchWorkflow(ctx, id, prev.Seq, httpapi.MaxWorkflowWait)
		if err != nil {
			return err
		}
		w := aw.Workflow
		if w.Seq == prev.Seq && !w.State.Terminal() {
			continue // the wait passed without a change
		}
		if err := devices.fill(ctx, c, w); err != nil {
			return err
		}
		if err := printChanges(out, prev, w, devices); err != nil {
			return err
		}
		if w.State.Terminal() {
			return outcome(w)
		}
		prev = w
	}
}

// outcome is nil for a completed workflow, else an error saying how it ended.
func outcome(w engine.Workflow) error {
	if w.State == engine.WorkflowCompleted {
		return nil
	}
	return fmt.Errorf("workflow %s %s: %s", w.ID, strings.ReplaceAll(w.State.String(), "_", " "), orDash(w.Reason))
}

// deviceCache maps task ids to the proplet each was placed on.
type deviceCache map[string]string

// fill looks up the proplet of every task of w not known yet (a task not
// placed yet is asked again next time; one deleted has no device).
func (d deviceCache) fill(ctx context.Context, c *client.Client, w engine.Workflow) error {
	for _, s := range w.Steps {
		if s.TaskID == "" || d[s.TaskID] != "" {
			continue
		}
		t, err := c.GetTask(ctx, s.TaskID)
		switch {
		case client.StatusCode(err) == http.StatusNotFound:
		case err != nil:
			return fmt.Errorf("task %s of step %s: %w", s.TaskID, s.Name, err)
		default:
			d[s.TaskID] = t.PropletID
		}
	}
	return nil
}

// of returns the step's device, or how many devices a fan-out step runs on, or "-".
func (d deviceCache) of(s engine.Step) string {
	if len(s.Shards) == 0 {
		return orDash(d[s.TaskID])
	}
	if len(s.Shards) == 1 {
		return s.Shards[0].Device
	}
	return fmt.Sprintf("%d devices", len(s.Shards))
}

// printWorkflow writes the workflow's header and a table of its steps;
// now is the end of the durations of what is still running.
func printWorkflow(out io.Writer, w engine.Workflow, devices deviceCache, now time.Time) error {
	if err := workflowHeader(out, w, now); err != nil {
		return err
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "STEP\tSTATE\tATTEMPT\tDEVICE\tSTARTED\tFINISHED\tDURATION\tRESULT / ERROR")
	for i, s := range w.Steps {
		spec := stepSpec(w, i)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, attemptText(s, spec), devices.of(s),
			clock(s.StartedAt), clock(s.FinishedAt), stepDuration(s, now), outcomeText(s.State, s.Result, s.Error))
		if len(s.Shards) > 1 {
			for _, sh := range s.Shards {
				fmt.Fprintf(tw, "  └\t%s\t\t%s\t\t\t\t%s\n", sh.State, sh.Device, outcomeText(sh.State, sh.Result, sh.Error))
			}
		}
	}
	return tw.Flush()
}

func workflowHeader(out io.Writer, w engine.Workflow, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Workflow:\t%s\n", w.ID)
	fmt.Fprintf(tw, "Name:\t%s\n", w.Spec.Name)
	fmt.Fprintf(tw, "State:\t%s\n", w.State)
	if w.Reason != "" {
		fmt.Fprintf(tw, "Reason:\t%s\n", w.Reason)
	}
	if w.Spec.Cron != "" {
		fmt.Fprintf(tw, "Cron:\t%s (%s); each firing starts a run of its own\n", w.Spec.Cron, cmp.Or(w.Spec.Timezone, "UTC"))
	}
	if w.Source != "" {
		fmt.Fprintf(tw, "Source:\t%s\n", w.Source)
	}
	if w.Held && !w.State.Terminal() {
		fmt.Fprintf(tw, "Held:\tno step starts until it is released (POST /jobs/%s/start)\n", w.ID)
	}
	fmt.Fprintf(tw, "Created:\t%s\n", stamp(w.CreatedAt))
	if !w.FinishedAt.IsZero() {
		fmt.Fprintf(tw, "Finished:\t%s (after %s)\n", stamp(w.FinishedAt), humanDuration(w.FinishedAt.Sub(w.CreatedAt)))
	} else if !w.DeadlineAt.IsZero() {
		fmt.Fprintf(tw, "Deadline:\t%s (in %s)\n", stamp(w.DeadlineAt), humanDuration(w.DeadlineAt.Sub(now)))
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

// stepSpec returns the spec of the i-th step (the zero spec if the
// workflow's spec does not have it).
func stepSpec(w engine.Workflow, i int) engine.StepSpec {
	if i < len(w.Spec.Steps) {
		return w.Spec.Steps[i]
	}
	return engine.StepSpec{}
}

// attemptText is "-" before the first attempt, "n", or "n/max" when the
// step may be retried.
func attemptText(s engine.Step, spec engine.StepSpec) string {
	switch {
	case s.Attempt == 0:
		return "-"
	case spec.MaxAttempts() > 1:
		return fmt.Sprintf("%d/%d", s.Attempt, spec.MaxAttempts())
	}
	return fmt.Sprint(s.Attempt)
}

// clock formats the time of day of a step event (the header has the date).
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.TimeOnly)
}

// stepDuration is how long the last attempt took, or has been running.
func stepDuration(s engine.Step, now time.Time) string {
	switch {
	case s.StartedAt.IsZero():
		return "-"
	case s.State == engine.StepRunning:
		return humanDuration(now.Sub(s.StartedAt))
	case s.FinishedAt.Before(s.StartedAt):
		return "-" // skipped before an attempt of this run
	}
	return humanDuration(s.FinishedAt.Sub(s.StartedAt))
}

// humanDuration rounds d to what a reader needs: ms below a second, tenths
// below a minute, seconds above.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Most runes of a result or error in a table cell or a change line.
const (
	maxResultText = 60
	maxErrorText  = 200
)

// outcomeText is a completed step's result or another's error, on one
// line and shortened.
func outcomeText(state engine.StepState, result []byte, errText string) string {
	if state == engine.StepCompleted {
		text, _ := resultText(result)
		return orDash(shorten(text, maxResultText))
	}
	return orDash(shorten(errText, maxErrorText))
}

// shorten puts s on one line (newlines and tabs escaped, a final newline
// dropped) and cuts it to max runes with an ellipsis.
func shorten(s string, max int) string {
	s = strings.TrimRight(s, "\r\n")
	s = strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", `\t`).Replace(s)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-1]) + "…"
}

// workflowTable writes a page of workflows.
func workflowTable(out io.Writer, page httpapi.WorkflowList, now time.Time) error {
	tw := newTable(out)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tSTEPS\tCREATED\tDURATION")
	for _, aw := range page.Workflows {
		w := aw.Workflow
		end := w.FinishedAt
		if end.IsZero() {
			end = now
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, w.Spec.Name, w.State, stepsEnded(w), stamp(w.CreatedAt), humanDuration(end.Sub(w.CreatedAt)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown := page.Offset + len(page.Workflows); shown < page.Total {
		_, err := fmt.Fprintf(out, "(%d of %d workflows; more with --offset %d)\n", len(page.Workflows), page.Total, shown)
		return err
	}
	return nil
}

// stepsEnded is "ended/all" of the workflow's steps.
func stepsEnded(w engine.Workflow) string {
	n := 0
	for _, s := range w.Steps {
		if s.State.Terminal() {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(w.Steps))
}

// printChanges writes a line per change from prev to cur: the workflow
// itself when prev is the zero workflow, each attempt started, each device
// of a fan-out step and each step that ended or failed an attempt, and the
// end of the workflow.
func printChanges(out io.Writer, prev, cur engine.Workflow, devices deviceCache) error {
	var lines []string
	if !prev.Exists() {
		lines = append(lines, fmt.Sprintf("%s workflow %s (%s): %d steps, %s", clock(cur.CreatedAt), cur.ID, cur.Spec.Name, len(cur.Steps), cur.State))
	}
	for i, s := range cur.Steps {
		var was engine.Step
		if i < len(prev.Steps) {
			was = prev.Steps[i]
		}
		lines = append(lines, stepChanges(was, s, stepSpec(cur, i), devices, cur.UpdatedAt)...)
	}
	if cur.State.Terminal() && !prev.State.Terminal() {
		lines = append(lines, endLine(cur))
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(out, l); err != nil {
			return err
		}
	}
	return nil
}

// stepChanges describes how step s moved since was (its earlier state);
// at is the time of changes that carry none of their own.
func stepChanges(was, s engine.Step, spec engine.StepSpec, devices deviceCache, at time.Time) []string {
	var lines []string
	newAttempt := s.Attempt > was.Attempt
	if newAttempt {
		lines = append(lines, changeLine(s.StartedAt, s.Name, engine.StepRunning, startText(s, spec, devices)))
	}
	for i, sh := range s.Shards {
		if sh.State != engine.StepRunning && (newAttempt || i >= len(was.Shards) || was.Shards[i].State != sh.State) {
			lines = append(lines, changeLine(at, s.Name+"@"+sh.Device, sh.State, outcomeText(sh.State, sh.Result, sh.Error)))
		}
	}
	ended := s.State.Terminal() || s.State == engine.StepBackoff
	if ended && (newAttempt || s.State != was.State) {
		lines = append(lines, changeLine(s.FinishedAt, s.Name, s.State, endText(s, spec)))
	}
	return lines
}

func startText(s engine.Step, spec engine.StepSpec, devices deviceCache) string {
	text := "attempt " + attemptText(s, spec)
	if d := devices.of(s); d != "-" {
		text += " on " + d
	}
	return text
}

func endText(s engine.Step, spec engine.StepSpec) string {
	text := outcomeText(s.State, s.Result, s.Error)
	switch s.State {
	case engine.StepCompleted, engine.StepFailed:
		if d := stepDuration(s, s.FinishedAt); d != "-" {
			text += " (" + d + ")"
		}
	case engine.StepBackoff:
		var policy engine.RetryPolicy
		if spec.Retry != nil {
			policy = *spec.Retry
		}
		text += fmt.Sprintf(" (attempt %d of %d failed; next in %s)", s.Attempt, spec.MaxAttempts(), humanDuration(policy.Backoff(s.Attempt)))
	}
	return text
}

func changeLine(at time.Time, what string, state engine.StepState, text string) string {
	return fmt.Sprintf("%s %-16s %-9s %s", clock(at), what, state, text)
}

func endLine(w engine.Workflow) string {
	text := fmt.Sprintf("%s workflow %s after %s", clock(w.FinishedAt), w.State, humanDuration(w.FinishedAt.Sub(w.CreatedAt)))
	if w.Reason != "" {
		text += ": " + w.Reason
	}
	return text
}
