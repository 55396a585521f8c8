package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jetprop/jetprop/engine/replaycheck"
	"github.com/jetprop/jetprop/events"
)

func eventsCommand() *command {
	return &command{
		name: "events", summary: "read the event history",
		help: `Read the events jetprop stores: every fact about tasks, proplets, workflows,
artifacts and module transfers; replay them to check that this binary folds and
decides them as they were recorded; list what the server could not read.`,
		sub: []*command{eventsTailCommand(), eventsReplayCommand(), eventsDoctorCommand()},
	}
}

func eventsTailCommand() *command {
	return &command{
		name: "tail", summary: "print events, then follow new ones", maxArgs: 0,
		help: `Print stored events, one a line: time, stream sequence, aggregate
(kind/id), type and data. Each kind has its own stream: the stored events come
a stream at a time, then new events of every kind as they are appended, until
interrupted (or not, with --no-follow).`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var from uint64
			var noFollow bool
			fs.Uint(&from, "from", 0, "start at this stream `sequence` in every stream")
			fs.Bool(&noFollow, "no-follow", false, "stop after the stored events")
			return func(ctx context.Context, _ []string) error {
				return newClient().EventsFrom(ctx, from, !noFollow, func(ev events.Envelope) error {
					return printEvent(e.stdout, ev)
				})
			}
		},
	}
}

// eventTime is the time format of event lines.
const eventTime = "2006-01-02T15:04:05.000Z07:00"

func printEvent(w io.Writer, e events.Envelope) error {
	_, err := fmt.Fprintf(w, "%s %6d %-34s %-22s %s\n",
		e.Time.UTC().Format(eventTime), e.Seq, e.Aggregate, e.Type, compact(e.Data))
	return err
}

func eventsReplayCommand() *command {
	return &command{
		name: "replay", summary: "replay every stored history; with --check, through this binary's deciders", maxArgs: 0,
		help: `Replay every stored history of every stream, from sequence 1 to the last
event stored when the read of the stream starts, and print per kind how many
aggregates and events were read, the time taken and the events per second.

Without --check, every event must decode and fold into its aggregate's state.
With --check, every history also goes through this binary's deciders: at each
position the command the recorded event implies (task.scheduled: a schedule,
workflow.step_failed: a result or an attempt timeout, ...) is decided on the
state folded so far, and the events decided, consequences included (skipped
steps, a workflow's end, a fan-out step's outcome), must equal the recorded
ones, type and JSON body; then both must fold to the same state. Each
aggregate's first difference is printed as a divergence, and the command
exits with status 1: run a new jetprop binary against an old history to see
whether an upgrade changes what the engine decides.

The events are read from the server's HTTP API (GET /events, as 'events tail
--no-follow' reads them), given by --server like every client command: no
NATS access is needed, and the deciders are this binary's, not the server's.`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			format := outputFlag(fs)
			var check bool
			fs.Bool(&check, "check", false, "also decide every recorded command again and compare the events")
			return func(ctx context.Context, _ []string) error {
				var opts []replaycheck.Option
				if !check {
					opts = append(opts, replaycheck.FoldOnly())
				}
				c := replaycheck.New(events.DefaultCodec(), opts...)
				start := time.Now()
				err := newClient().EventsFrom(ctx, 0, false, c.Add)
				if err == nil {
					err = ctx.Err() // an interrupted read returns nil
				}
				if err != nil {
					return err
				}
				r := replayReport{Result: c.Finish(), Check: check, Seconds: time.Since(start).Seconds()}
				if r.Seconds > 0 {
					r.EventsPerSecond = float64(r.Events()) / r.Seconds
				}
				if err := r.print(e.stdout, *format); err != nil {
					return err
				}
				return r.err()
			}
		},
	}
}

// replayReport is what 'events replay' prints.
type replayReport struct {
	replaycheck.Result
	Check           bool    `json:"check"` // through the deciders, not only folded
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
}

func (r replayReport) print(w io.Writer, format string) error {
	if format == formatJSON {
		return printJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTREAM\tAGGREGATES\tEVENTS\tCHECKED\tDIVERGENCES")
	for _, k := range r.Kinds {
		checked := fmt.Sprint(k.Checked)
		if k.Skipped {
			checked = "skipped"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\n", k.Kind, k.Kind.Stream(), k.Aggregates, k.Events, checked, k.Divergences)
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\n", r.Aggregates(), r.Events(), r.Checked(), len(r.Divergences))
	if err := tw.Flush(); err != nil {
		return err
	}
	how := "folded (no --check)"
	if r.Check {
		how = "checked through the deciders"
	}
	fmt.Fprintf(w, "\n%d events of %d aggregates %s in %s (%.0f events/s)\n",
		r.Events(), r.Aggregates(), how, time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond), r.EventsPerSecond)
	for _, d := range r.Divergences {
		if _, err := fmt.Fprintf(w, "\ndivergence %s\n", d); err != nil {
			return err
		}
	}
	return nil
}

func (r replayReport) err() error {
	switch n := len(r.Divergences); n {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("1 of %d histories diverges", r.Aggregates())
	default:
		return fmt.Errorf("%d of %d histories diverge", n, r.Aggregates())
	}
}
