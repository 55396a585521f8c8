package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jetprop/jetprop/events"
)

func eventsCommand() *command {
	return &command{
		name: "events", summary: "read the event history",
		help: "Read the events jetprop stores: every fact about tasks, proplets and module transfers.",
		sub:  []*command{eventsTailCommand()},
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
