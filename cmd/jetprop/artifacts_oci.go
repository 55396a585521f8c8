package main

import (
	"context"
	"fmt"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// registryFlags declares the flags of how the server reaches a registry.
func registryFlags(fs *flagSet) *httpapi.RegistryAuth {
	var a httpapi.RegistryAuth
	fs.Bool(&a.PlainHTTP, "plain-http", false, "talk plain HTTP to the registry (loopback and lab registries)")
	fs.String(&a.Username, "username", "", "registry `USER` for basic auth (with --password)")
	fs.String(&a.Password, "password", "", "registry `PASSWORD` (prefer the environment variable: a flag shows in ps)")
	fs.String(&a.Token, "token", "", "registry access `TOKEN` (bearer), instead of --username and --password")
	return &a
}

const registryHelp = `The server talks to the registry, not this client: give --plain-http for a
registry that speaks plain HTTP (a loopback or lab registry). Without
--username/--password or --token the server's own registry credentials
(--oci-username, ...) apply; credentials given here go only to the registry
the reference names and are never logged.`

func artifactImportCommand() *command {
	return &command{
		name: "import", args: "<oci-ref>", summary: "pull a module from an OCI registry into the store and print its digest", minArgs: 1, maxArgs: 1,
		help: `Have the server pull the wasm module <oci-ref> names from an OCI registry
(host[:port]/repository:tag, or host[:port]/repository@sha256:<hex>; the tag
or digest is honoured as written, the wasm layer chosen by media type), store
it, tag it, and print its sha256 digest. The name:tag defaults to the
repository's last path element and the reference's tag
(localhost:5000/demo/add:v2 is add:v2); a reference by digest alone is tagged
sha256-<first 12 hex digits of that digest>. A module already stored is not
downloaded again. An unknown tag or repository fails with the registry's
answer (HTTP 404); refused credentials or an unreachable registry with
HTTP 502.

` + registryHelp + `

Example: jetprop artifact import localhost:5000/demo/add:v2 --plain-http`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var name string
			fs.String(&name, "name", "", "store the module as `NAME[:TAG]` (default: from the reference)")
			auth := registryFlags(fs)
			return func(ctx context.Context, args []string) error {
				a, err := newClient().ImportArtifact(ctx, httpapi.ImportRequest{Ref: args[0], Name: name, RegistryAuth: *auth})
				if err != nil {
					return fmt.Errorf("import %s: %w", args[0], err)
				}
				_, err = fmt.Fprintln(e.stdout, a.Digest)
				return err
			}
		},
	}
}

func artifactExportCommand() *command {
	return &command{
		name: "export", args: "<ref> <oci-ref>", summary: "push a stored module to an OCI registry and print the manifest digest", minArgs: 2, maxArgs: 2,
		help: `Have the server push the module <ref> names (name:tag, name, or sha256:<hex>)
to an OCI registry as <oci-ref> (host[:port]/repository:tag): an OCI artifact
with the standard wasm media types (config application/vnd.wasm.config.v1+json,
one layer application/vnd.wasm.content.layer.v1+wasm) that wasm-to-oci, oras,
Propeller's proxy and 'jetprop artifact import' read. Prints the manifest
digest; exporting the same module again gives the same digest.

` + registryHelp + `

Example: jetprop artifact export vision:1.2 localhost:5000/demo/vision:1.2 --plain-http`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			auth := registryFlags(fs)
			return func(ctx context.Context, args []string) error {
				r, err := newClient().ExportArtifact(ctx, args[0], httpapi.ExportRequest{To: args[1], RegistryAuth: *auth})
				if err != nil {
					return fmt.Errorf("export %s to %s: %w", args[0], args[1], err)
				}
				_, err = fmt.Fprintln(e.stdout, r.ManifestDigest)
				return err
			}
		},
	}
}
