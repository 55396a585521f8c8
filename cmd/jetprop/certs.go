package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
)

func certsCommand() *command {
	return &command{
		name: "certs", summary: "make TLS certificates to try jetprop with TLS",
		help: `Make certificates for TLS on the HTTP, NATS and MQTT listeners and for
devices' mutual TLS. For trying things out; production certificates come
from your own CA.`,
		sub: []*command{certsDevCommand()},
	}
}

func certsDevCommand() *command {
	return &command{
		name: "dev", summary: "make a local CA, a server certificate and devices' client certificates", maxArgs: 0,
		help: `Make a development CA (ECDSA P-256) in --out, a server certificate for
--hosts and a client certificate for each of --devices (common name: the
device id), as PEM files: ca.pem, ca-key.pem, server.pem, server-key.pem,
<device>.pem, <device>-key.pem. Keys are written 0600. Then print the
variables that give them to jetprop, the CLI, proplets and mosquitto.

Files that exist are not overwritten (nothing is written) unless --force.
A CA already in --out signs the new certificates, so devices are added
later with: jetprop certs dev --out DIR --hosts '' --devices d3
(--force makes a new CA too).

Example: jetprop certs dev --out ./pki --devices edge-1,edge-2`,
		setup: func(fs *flagSet, e *env) action {
			var cfg certs.DevConfig
			var hosts, devices string
			fs.String(&cfg.Dir, "out", "", "`DIR` to write the PEM files to (required)")
			fs.String(&hosts, "hosts", strings.Join(certs.DefaultDevHosts, ","), "comma-separated DNS names and IP addresses of the server certificate; '' for none")
			fs.String(&devices, "devices", "", "comma-separated device ids to make client certificates for")
			fs.Bool(&cfg.Force, "force", false, "replace files that exist, the CA too")
			return func(_ context.Context, _ []string) error {
				cfg.Hosts, cfg.Devices = splitNames(hosts), splitNames(devices)
				if cfg.Dir == "" {
					return usageErr("certs dev", fmt.Errorf("--out is required"))
				}
				files, err := certs.Dev(cfg)
				if err != nil {
					return err
				}
				return printDev(e.stdout, files, cfg.Hosts)
			}
		},
	}
}

// splitNames splits a comma-separated list, dropping empty items.
func splitNames(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// printDev says what was written and how to use it, as lines that can be
// pasted into a shell.
func printDev(w io.Writer, f certs.DevFiles, hosts []string) error {
	p := &printer{w: w}
	p.line("Wrote to %s:", f.Dir)
	ca := "a new development CA"
	if f.ReusedCA {
		ca = "the CA that was there (kept; it signed the certificates below)"
	}
	p.line("  %-30s %s", certs.DevCA+", "+certs.DevCAKey, ca)
	if f.Server != "" {
		p.line("  %-30s server certificate for %s", certs.DevServer+", "+certs.DevServerKey, strings.Join(hosts, ", "))
	}
	for _, d := range f.Devices {
		p.line("  %-30s client certificate of device %s (CN=%s)", filepath.Base(d.Cert)+", "+filepath.Base(d.Key), d.ID, d.ID)
	}
	host := "localhost"
	if len(hosts) > 0 {
		host = hosts[0]
	}
	if f.Server != "" {
		printServerUse(p, f, host)
	}
	for _, d := range f.Devices {
		printDeviceUse(p, f, d, host)
	}
	return p.err
}

func printServerUse(p *printer, f certs.DevFiles, host string) {
	p.line("\nThe server (jetprop up, jetprop server; or --tls-cert, --tls-key, --tls-ca):")
	p.export("JETPROP_TLS_CERT", f.Server)
	p.export("JETPROP_TLS_KEY", f.ServerKey)
	if len(f.Devices) > 0 {
		p.export("JETPROP_TLS_CA", f.CA)
		p.export("JETPROP_TLS_CLIENT_AUTH", string(certs.ClientAuthRequire))
	} else {
		p.line("  # TLS only; with --devices, also JETPROP_TLS_CA=%s for mutual TLS", shellQuote(f.CA))
	}
	p.line("\nThe CLI:")
	p.export("JETPROP_SERVER", "https://"+net.JoinHostPort(host, port(app.DefaultHTTP)))
	p.export("JETPROP_CA", f.CA)
}

func printDeviceUse(p *printer, f certs.DevFiles, d certs.DevDevice, host string) {
	mqtt := net.JoinHostPort(host, strconv.Itoa(app.DefaultMQTTPort))
	p.line("\nProplet %s (bin/proplet, jetprop proplet or Propeller's proplet):", d.ID)
	p.export("PROPLET_MQTT_ADDRESS", "tls://"+mqtt)
	p.export("PROPLET_ENTITY_ID", d.ID)
	p.export("PROPLET_TENANT_ID", app.DefaultTenant) // the server's --tenant and --channel
	p.export("PROPLET_CHANNEL_ID", app.DefaultChannel)
	p.export("PROPLET_MQTT_TLS_CA_CERT", f.CA)
	p.export("PROPLET_MQTT_TLS_CLIENT_CERT", d.Cert)
	p.export("PROPLET_MQTT_TLS_CLIENT_KEY", d.Key)
	h, port, _ := net.SplitHostPort(mqtt)
	p.line("  # or: mosquitto_sub -h %s -p %s --cafile %s --cert %s --key %s -i %s -t 'm/#' -v",
		h, port, shellQuote(f.CA), shellQuote(d.Cert), shellQuote(d.Key), d.ID)
}

// port is the port of a host:port default.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// printer writes lines and keeps the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p *printer) export(name, value string) { p.line("  export %s=%s", name, shellQuote(value)) }

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+=,@[]", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
