package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine/domain"
)

func tokenCommand() *command {
	return &command{
		name: "token", summary: "create, list and revoke API tokens (admin)",
		help: `Manage the bearer tokens of a server started with --auth on. A token has a
role: viewer (reads), operator (also runs tasks, workflows, jobs and manages
artifacts) or admin (also manages tokens and devices). The server keeps only
a hash of each token; 'create' prints the token once. Client commands send
their token from JETPROP_TOKEN (or --api-token). These commands need an admin
token (the server writes one to <data>/admin.token at its first start).`,
		sub: []*command{tokenCreateCommand(), tokenListCommand(), tokenRevokeCommand()},
	}
}

func tokenCreateCommand() *command {
	return &command{
		name: "create", summary: "create a token and print it (once)", maxArgs: 0,
		help: `Create a token with --role and --name and print it on stdout, alone, so that
TOKEN=$(jetprop token create --role operator --name ci) keeps it. The server
keeps only its hash: it cannot show the token again.

Example: jetprop token create --role viewer --name grafana`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var name, role string
			fs.String(&name, "name", "", "what the token is for (required), shown by 'token ls'")
			fs.Choice(&role, "role", "", []string{"", string(domain.RoleViewer), string(domain.RoleOperator), string(domain.RoleAdmin)},
				"`role`: viewer, operator or admin (required)")
			return func(ctx context.Context, _ []string) error {
				if name == "" || role == "" {
					return usageErr("token create", fmt.Errorf("--name and --role are required"))
				}
				t, err := newClient().CreateToken(ctx, name, domain.Role(role))
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "token %s (%s, %q) created; it is shown this once\n", t.ID, t.Role, t.Name)
				_, err = fmt.Fprintln(e.stdout, t.Secret)
				return err
			}
		},
	}
}

func tokenListCommand() *command {
	return &command{
		name: "ls", aliases: []string{"list"}, summary: "list tokens: id, name, role, created, revoked", maxArgs: 0,
		help: "List every token, oldest first, revoked ones too: a table of id, name, role, when and by which token it was created, and whether it is revoked, or the API's JSON page with -o json. Never the tokens themselves.",
		setup: func(fs *flagSet, e *env) action {
			return listAction(fs, e, "tokens", (*client.Client).ListTokens, tokenTable)
		},
	}
}

func tokenTable(w io.Writer, page httpapi.TokenList) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tBY\tREVOKED")
	for _, t := range page.Tokens {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, stamp(t.CreatedAt), orDash(t.CreatedBy), stamp(t.RevokedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown := page.Offset + len(page.Tokens); shown < page.Total {
		_, err := fmt.Fprintf(w, "(%d of %d tokens; more with --offset %d)\n", len(page.Tokens), page.Total, shown)
		return err
	}
	return nil
}

func tokenRevokeCommand() *command {
	return idCommand("revoke", "revoke a token", "Revoke the token with this id (from 'token ls'): the server refuses it from the next request on. Revoking a revoked token is no error.",
		func(ctx context.Context, c *client.Client, e *env, id string) error {
			if err := c.RevokeToken(ctx, id); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "%s revoked\n", id)
			return err
		})
}
