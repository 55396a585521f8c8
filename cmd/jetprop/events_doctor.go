package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/events"
)

func eventsDoctorCommand() *command {
	return &command{
		name: "doctor", summary: "list quarantined aggregates and damaged event streams; exit 1 if any", maxArgs: 0,
		help: `List what the server found unreadable in its event streams (GET
/events/quarantine), and exit with status 1 when there is anything:

- quarantined aggregates: a task, proplet, workflow, artifact or module
  transfer with a stored message that is not an event or does not decode.
  The server refuses its commands (409) and shows its last good state; the
  rest of the server runs. Each comes with the stream, the sequence, the
  subject, the headers and a printable excerpt of the message, and why it
  cannot be read. A message whose subject names no aggregate is listed by
  stream and sequence.
- damaged event streams, found at start: purged (its first messages are
  gone) or missing (deleted, then created empty).

To release an aggregate, remove the message (with the nats CLI against the
server's NATS port: nats stream rmm <stream> <seq>) and restart jetprop: its
history then folds without it. Or leave it: it costs nothing but the
aggregate. A damaged stream's history is gone; restore the data directory
from a backup if it matters.`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			format := outputFlag(fs)
			return func(ctx context.Context, _ []string) error {
				r, err := newClient().Quarantine(ctx)
				if err != nil {
					return err
				}
				if *format == formatJSON {
					err = printJSON(e.stdout, r)
				} else {
					err = printDoctor(e.stdout, r)
				}
				if err != nil {
					return err
				}
				return doctorErr(r)
			}
		},
	}
}

func printDoctor(w io.Writer, r httpapi.QuarantineReport) error {
	var b strings.Builder
	if r.Problems() == 0 {
		b.WriteString("no quarantined aggregate, no damaged event stream\n")
	}
	if n := len(r.Quarantined); n > 0 {
		fmt.Fprintf(&b, "%s (commands refused, last good state shown):\n", plural(n, "quarantined aggregate", "quarantined aggregates"))
		for _, q := range r.Quarantined {
			writeQuarantined(&b, q)
		}
	}
	if n := len(r.Streams); n > 0 {
		if len(r.Quarantined) > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s (found at start):\n", plural(n, "damaged event stream", "damaged event streams"))
		for _, p := range r.Streams {
			fmt.Fprintf(&b, "\n%s %s: first seq %d, last seq %d, %d messages\n  %s\n", p.Stream, p.Problem, p.FirstSeq, p.LastSeq, p.Messages, p.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeQuarantined(b *strings.Builder, q events.Quarantined) {
	what := q.Aggregate.String()
	if q.Aggregate.ID == "" {
		what = "(no aggregate)"
	}
	fmt.Fprintf(b, "\n%s  %s seq %d\n", what, q.Stream, q.Seq)
	fmt.Fprintf(b, "  error    %s\n", q.Reason)
	fmt.Fprintf(b, "  subject  %s\n", q.Subject)
	for _, k := range slices.Sorted(maps.Keys(q.Headers)) {
		fmt.Fprintf(b, "  header   %s: %s\n", k, strings.Join(q.Headers[k], ", "))
	}
	fmt.Fprintf(b, "  data     %s (%d bytes)\n", q.Data, q.Size)
}

func doctorErr(r httpapi.QuarantineReport) error {
	if r.Problems() == 0 {
		return nil
	}
	return fmt.Errorf("%s, %s", plural(len(r.Quarantined), "quarantined aggregate", "quarantined aggregates"),
		plural(len(r.Streams), "damaged event stream", "damaged event streams"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
