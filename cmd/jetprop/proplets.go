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
		sub:  []*command{propletsListCommand(), propletsGetCommand()},
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
