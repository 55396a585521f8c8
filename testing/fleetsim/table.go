package fleetsim

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteTable writes reports as one Markdown table, a row each, ready to
// paste into a note. Columns of phases no report ran are left out.
func WriteTable(w io.Writer, reports ...Report) error {
	cols := columns(reports)
	var b strings.Builder
	row := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	var head, rule []string
	for _, c := range cols {
		head, rule = append(head, c.name), append(rule, "---")
	}
	row(head)
	row(rule)
	for _, r := range reports {
		var cells []string
		for _, c := range cols {
			cells = append(cells, c.cell(r))
		}
		row(cells)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type column struct {
	name string
	cell func(Report) string
	used func(Report) bool // nil: always
}

var allColumns = []column{
	{"devices", func(r Report) string { return fmt.Sprint(r.Devices) }, nil},
	{"connected (time)", func(r Report) string {
		return fmt.Sprintf("%d (%s)", r.Connect.Ready, round(r.Connect.Took))
	}, nil},
	{"subscribed", func(r Report) string {
		return fmt.Sprintf("%d at QoS %d", r.Connect.Subscribed, r.Fleet.QoS) + details(detail{r.Connect.Unreachable, "unreachable"})
	}, nil},
	{"API shows alive (time)", func(r Report) string {
		return fmt.Sprintf("%d (%s)", r.Alive.Alive, round(r.Alive.Took))
	}, nil},
	{"can receive starts", func(r Report) string {
		rr := r.Reach
		return fmt.Sprint(rr.Reached) + details(
			detail{rr.Foreign, "to another device"}, detail{rr.Unsent, "not sent"},
			detail{rr.MissingSubscribed, "subscribed, not received"})
	}, func(r Report) bool { return r.Reach != nil }},
	{"results recorded", func(r Report) string { return fmt.Sprint(r.Reach.Recorded) }, func(r Report) bool { return r.Reach != nil }},
	{"starts received / accepts sent", startsAndAccepts, func(r Report) bool { return r.Fleet.Starts > 0 }},
	{"engine CPU steady", func(r Report) string { return fmt.Sprintf("%.1f %%", r.Steady.CPUPercent) }, hasProc},
	{"engine RSS (peak)", func(r Report) string {
		return fmt.Sprintf("%s (%s)", mib(r.Steady.RSS), mib(r.Steady.PeakRSS))
	}, hasProc},
	{"heartbeat ack p50 / p99", func(r Report) string {
		h := r.Steady.Heartbeats
		if r.Fleet.HeartbeatQoS == 0 {
			return "– (heartbeats at QoS 0)"
		}
		if h.Count == 0 {
			return "no heartbeat in the window"
		}
		return fmt.Sprintf("%s / %s", ms(h.P50), ms(h.P99))
	}, func(r Report) bool { return r.Steady != nil }},
	{"EDGE_IN backlog max (steady / dispatch)", func(r Report) string {
		s, d := backlogs(r)
		return backlogMax(s) + " / " + backlogMax(d)
	}, func(r Report) bool {
		s, d := backlogs(r)
		return s != nil || d != nil
	}},
	{"dispatch", func(r Report) string {
		d := r.Dispatch
		if len(d.RoundRates) > 1 {
			return fmt.Sprintf("%d rounds of %d × %d: median %.0f tasks/s (%.0f–%.0f)", len(d.RoundRates), d.Tasks, d.Concurrency,
				d.PerSecond, slices.Min(d.RoundRates), slices.Max(d.RoundRates))
		}
		return fmt.Sprintf("%d × %d: %.0f tasks/s", d.Tasks, d.Concurrency, d.PerSecond)
	}, func(r Report) bool { return r.Dispatch != nil }},
	{"stuck", func(r Report) string {
		d := r.Dispatch
		return fmt.Sprint(d.Stuck) + details(
			detail{d.StuckUnsubscribed, "on devices without a subscription"}, detail{d.StuckScheduled, "not sent"},
			detail{d.NotRun, "not run"})
	}, func(r Report) bool { return r.Dispatch != nil }},
	{"shutdown", func(r Report) string { return round(*r.Shutdown) }, func(r Report) bool { return r.Shutdown != nil }},
	{"restart to /health", func(r Report) string { return round(*r.Restart) }, func(r Report) bool { return r.Restart != nil }},
}

// startsAndAccepts is the starts the devices received, re-sends counted
// apart, and the accepts they sent ("off" with NoAccept).
func startsAndAccepts(r Report) string {
	s := r.Fleet
	accepts := "off"
	if s.Accept {
		accepts = fmt.Sprint(s.Accepts) + details(detail{int(s.AcceptErrors), "not acknowledged"})
	}
	return fmt.Sprint(s.Starts) + details(detail{int(s.Duplicates), "re-sent"}) + " / " + accepts
}

// backlogs are the backlog samples of the steady window and the dispatch
// test, nil where not measured.
func backlogs(r Report) (steady, dispatch *Backlog) {
	if r.Steady != nil {
		steady = r.Steady.Backlog
	}
	if r.Dispatch != nil {
		dispatch = r.Dispatch.Backlog
	}
	return steady, dispatch
}

// backlogMax is the largest sample, "–" without one.
func backlogMax(b *Backlog) string {
	if b == nil || b.Samples == 0 {
		return "–"
	}
	return fmt.Sprint(b.Max)
}

// detail is a count that a cell explains itself with.
type detail struct {
	n    int
	what string
}

// details is " (n what, ...)" for the non-zero ones, "" if none.
func details(ds ...detail) string {
	var parts []string
	for _, d := range ds {
		if d.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", d.n, d.what))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func hasProc(r Report) bool { return r.Steady != nil && r.Steady.RSS > 0 }

// columns are those at least one report has; a report without one shows "–".
func columns(reports []Report) []column {
	var out []column
	for _, c := range allColumns {
		if c.used == nil {
			out = append(out, c)
			continue
		}
		used := false
		for _, r := range reports {
			used = used || c.used(r)
		}
		if used {
			used := c.used
			cell := c.cell
			out = append(out, column{c.name, func(r Report) string {
				if !used(r) {
					return "–"
				}
				return cell(r)
			}, used})
		}
	}
	return out
}

func round(d Duration) string {
	t := time.Duration(d)
	if t >= 10*time.Second {
		return t.Round(time.Second).String()
	}
	return t.Round(100 * time.Millisecond).String()
}

func ms(d Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
