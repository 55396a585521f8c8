package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine"
)

func secretCommand() *command {
	return &command{
		name: "secret", aliases: []string{"secrets"}, summary: "set, list and delete secrets (admin)",
		help: `Manage secrets: values a task's or a workflow step's env refers to as
${secret:NAME} (the whole value or a part of it, e.g.
--env 'AUTH=Bearer ${secret:api_token}'). The server keeps a secret sealed
(AES-256-GCM under the key of --secrets-key-file or JETPROP_SECRETS_KEY) and
puts the value in only when it sends the task to a proplet that listens on
its own topics; tasks, events and answers show the reference, never the
value. These commands need an admin token.`,
		sub: []*command{secretSetCommand(), secretListCommand(), secretRemoveCommand()},
	}
}

func secretSetCommand() *command {
	return &command{
		name: "set", args: "<name>", summary: "set a secret's value, read from stdin", minArgs: 1, maxArgs: 1,
		help: `Give the secret <name> (1 to 64 letters, digits, - or _) a new value, read
from stdin: never from the command line, where it would show in the process
list and the shell's history. On a terminal the value is asked for without
echo; otherwise all of stdin is read and one trailing newline dropped, so
'jetprop secret set db < db.pass' and 'vault read ... | jetprop secret set db'
work. Each set is a new version; tasks already created get the value of
the version current when they start.`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			return func(ctx context.Context, args []string) error {
				value, err := readSecretValue(e, args[0])
				if err != nil {
					return err
				}
				s, err := newClient().SetSecret(ctx, args[0], value)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "secret %s set: version %d\n", s.Name, s.Version)
				return err
			}
		},
	}
}

// readSecretValue reads a secret's value from stdin: without echo on a
// terminal, else all of it less one trailing newline.
func readSecretValue(e *env, name string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(e.stderr, "value of secret %s (not echoed): ", name)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read the value: %w", err)
		}
		return string(b), nil
	}
	b, err := io.ReadAll(io.LimitReader(e.stdin, engine.MaxSecretValue+3))
	if err != nil {
		return "", fmt.Errorf("read the value from stdin: %w", err)
	}
	value := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if value == "" {
		return "", usageErr("secret set", fmt.Errorf("no value on stdin: pipe it in, e.g. jetprop secret set %s < FILE", name))
	}
	return value, nil
}

func secretListCommand() *command {
	return &command{
		name: "ls", aliases: []string{"list"}, summary: "list secrets: name, version, updated; never values", maxArgs: 0,
		help: "List the secrets by name: version, when and by which token each was last set, the id of the key that sealed it; -o json for the API's page. Never a value.",
		setup: func(fs *flagSet, e *env) action {
			return listAction(fs, e, "secrets", (*client.Client).ListSecrets, secretTable)
		},
	}
}

func secretTable(w io.Writer, page httpapi.SecretList) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tVERSION\tUPDATED\tBY\tKEY")
	for _, s := range page.Secrets {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Version, stamp(s.UpdatedAt), orDash(s.UpdatedBy), s.KeyID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown := page.Offset + len(page.Secrets); shown < page.Total {
		_, err := fmt.Fprintf(w, "(%d of %d secrets; more with --offset %d)\n", len(page.Secrets), page.Total, shown)
		return err
	}
	return nil
}

func secretRemoveCommand() *command {
	c := idCommand("rm", "delete a secret", "Delete the secret <name>. Tasks and workflow steps that refer to it fail when they are sent to a proplet, with a reason that names it.",
		func(ctx context.Context, c *client.Client, e *env, name string) error {
			if err := c.DeleteSecret(ctx, name); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "secret %s deleted\n", name)
			return err
		})
	c.args, c.aliases = "<name>", []string{"delete"}
	return c
}
