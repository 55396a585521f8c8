package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
)

func devicesCommand() *command {
	return &command{
		name: "device", aliases: []string{"devices"}, summary: "provision, list and revoke device identities",
		help: `Devices connect to the MQTT listener with their id as client id and user
name and their key as password. With --auth on the server admits only
provisioned devices; in dev mode anybody is admitted, anonymously, but a
provisioned device's id stays its own.`,
		sub: []*command{deviceAddCommand(), deviceListCommand(), deviceRevokeCommand()},
	}
}

func deviceAddCommand() *command {
	return &command{
		name: "add", args: "<id>", summary: "provision a device and print its key once", minArgs: 1, maxArgs: 1,
		help: `Provision the device <id> (letters, digits, - _ : @) and print its key: the
only time it is shown, since the server keeps only its hash. Give the
device its id and key as PROPLET_CLIENT_ID and PROPLET_CLIENT_KEY.

--legacy admits a Propeller proplet, which knows only Propeller's shared
topics: it may publish results, heartbeats and module requests there, and
read every start and chunk on them. What it says there is attributed by
the proplet_id it puts in the message, which the broker cannot check
(see docs/ARCHITECTURE.md, "Devices and their identity").

A revoked device gets a new key with add.`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var legacy bool
			fs.Bool(&legacy, "legacy", false, "a Propeller proplet on the shared topics")
			format := outputFlag(fs)
			return func(ctx context.Context, args []string) error {
				d, err := newClient().ProvisionDevice(ctx, args[0], legacy)
				if err != nil {
					return err
				}
				if *format == formatJSON {
					return printJSON(e.stdout, d)
				}
				fmt.Fprintf(e.stdout, "PROPLET_CLIENT_ID=%s\nPROPLET_CLIENT_KEY=%s\n", d.ID, d.Key)
				fmt.Fprintln(e.stderr, "the key is shown only now: keep it")
				return nil
			}
		},
	}
}

func deviceListCommand() *command {
	return &command{
		name: "ls", aliases: []string{"list"}, summary: "list devices and their identity", maxArgs: 0,
		help: "List devices by id: status, whether provisioned, legacy or revoked, whether they use their own topics, last change; -o json for the API's page.",
		setup: func(fs *flagSet, e *env) action {
			return listAction(fs, e, "devices", (*client.Client).ListDevices, deviceTable)
		},
	}
}

func deviceTable(w io.Writer, page httpapi.DeviceList) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tSTATUS\tIDENTITY\tTOPICS\tLAST CHANGE")
	for _, d := range page.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status, identity(d), topicsOf(d), stamp(d.LastChange))
	}
	return tw.Flush()
}

func identity(d httpapi.Device) string {
	switch {
	case d.Revoked:
		return "revoked"
	case d.Provisioned && d.Legacy:
		return "provisioned (legacy)"
	case d.Provisioned:
		return "provisioned"
	}
	return "anonymous"
}

func topicsOf(d httpapi.Device) string {
	if d.OwnTopics {
		return "own"
	}
	return "shared"
}

func deviceRevokeCommand() *command {
	return &command{
		name: "revoke", args: "<id>", summary: "cut a device off", minArgs: 1, maxArgs: 1,
		help: "Revoke the device <id>: it can no longer connect, and the server closes the connection it has within seconds. Tasks running on it are not re-placed by this.",
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var reason string
			fs.String(&reason, "reason", "", "why, recorded in the device.revoked event")
			return func(ctx context.Context, args []string) error {
				d, err := newClient().RevokeDevice(ctx, args[0], reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s revoked\n", d.ID)
				return nil
			}
		},
	}
}
