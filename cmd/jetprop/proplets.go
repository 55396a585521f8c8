package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
)

func propletsCommand() *command {
	return &command{
		name: "proplets", summary: "list and inspect proplets",
		help: "Inspect the proplets (edge workers) known to the server. To run a proplet, use 'jetprop proplet'.",
		sub:  []*command{propletsListCommand(), propletsGetCommand(), propletsHistoryCommand(), propletsDeleteCommand()},
	}
}

func propletsListCommand() *command {
	return &command{
		name: "list", summary: "list proplets", maxArgs: 0,
		help: "List proplets by id: a table of id, status, whether tasks may be placed on it, its active tasks, namespace and last change, or the API's JSON page with -o json.",
		setup: func(fs *flagSet, e *env) action {
			return listAction(fs, e, "proplets", (*client.Client).ListProplets, propletTable)
		},
	}
}

func propletTable(w io.Writer, page httpapi.PropletList) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tSTATUS\tALIVE\tTASKS\tNAMESPACE\tLAST CHANGE")
	for _, p := range page.Proplets {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%d\t%s\t%s\n", p.ID, p.Status, p.Alive, p.TaskCount, orDash(p.Namespace), stamp(p.LastChange))
	}
	return tw.Flush()
}

func propletsGetCommand() *command {
	return &command{
		name: "get", args: "<id>", summary: "print a proplet as JSON", minArgs: 1, maxArgs: 1,
		help: "Print the proplet with this id as JSON: status, metadata from its discovery message, active task count.",
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			return func(ctx context.Context, args []string) error {
				p, err := newClient().GetProplet(ctx, args[0])
				if err != nil {
					return err
				}
				return printJSON(e.stdout, p)
			}
		},
	}
}

func propletsDeleteCommand() *command {
	return idCommand("delete", "forget a proplet that runs no task",
		"Forget the proplet: it leaves the listings until its next heartbeat or announcement (a connected proplet comes back). "+
			"Refused while tasks are scheduled or running on it. Its credentials stay: to keep it out, 'jetprop device revoke'.",
		func(ctx context.Context, c *client.Client, e *env, id string) error {
			if err := c.DeleteProplet(ctx, id); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "%s deleted\n", id)
			return err
		})
}

func propletsHistoryCommand() *command {
	return &command{
		name: "history", args: "<id>", summary: "print a proplet's liveness changes", minArgs: 1, maxArgs: 1,
		help: "Print the proplet's liveness changes, oldest first (GET /proplets/{id}/alive-history): a table of time, event, " +
			"whether tasks may be placed on it after it, and the reason, or the API's JSON page with -o json.",
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var offset, limit int
			fs.Int(&offset, "offset", 0, "skip this many changes")
			fs.Int(&limit, "limit", httpapi.DefaultLimit, fmt.Sprintf("list at most this many changes (up to %d)", httpapi.MaxLimit))
			format := outputFlag(fs)
			return func(ctx context.Context, args []string) error {
				h, err := newClient().AliveHistory(ctx, args[0], offset, limit)
				if err != nil {
					return err
				}
				if *format == formatJSON {
					return printJSON(e.stdout, h)
				}
				return historyTable(e.stdout, h)
			}
		},
	}
}

func historyTable(w io.Writer, h httpapi.AliveHistory) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tEVENT\tALIVE\tREASON")
	for _, ev := range h.Events {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", stamp(ev.At), ev.Type, ev.Alive, orDash(ev.Reason))
	}
	return tw.Flush()
}
