// Package tlstest makes a development PKI for one test (certs.Dev in a
// temp dir): a CA, a server certificate for localhost, 127.0.0.1 and ::1,
// and a client certificate per device, with tls.Configs made from them.
package tlstest

import (
	"crypto/tls"
	"testing"

	"github.com/jetprop/jetprop/adapters/certs"
)

// PKI is the files certs.Dev wrote.
type PKI struct {
	certs.DevFiles
}

// New writes a CA, a loopback server certificate and a client
// certificate for each device into a temp dir.
func New(t testing.TB, devices ...string) PKI {
	t.Helper()
	files, err := certs.Dev(certs.DevConfig{Dir: t.TempDir(), Hosts: certs.DefaultDevHosts, Devices: devices})
	if err != nil {
		t.Fatalf("dev certificates: %v", err)
	}
	return PKI{files}
}

// ServerFiles are the listener's files with client auth mode.
func (p PKI) ServerFiles(mode certs.ClientAuth) certs.Server {
	s := certs.Server{Cert: p.DevFiles.Server, Key: p.ServerKey, ClientAuth: mode}
	if mode != certs.ClientAuthOff {
		s.CA = p.CA
	}
	return s
}

// ServerTLS is the listener's tls.Config with client auth mode.
func (p PKI) ServerTLS(t testing.TB, mode certs.ClientAuth) *tls.Config {
	t.Helper()
	cfg, err := p.ServerFiles(mode).Load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Files are a client's files: the CA, and the device's certificate and
// key ("" for none).
func (p PKI) Files(device string) certs.Client {
	c := certs.Client{CA: p.CA}
	for _, d := range p.Devices {
		if d.ID == device {
			c.Cert, c.Key = d.Cert, d.Key
		}
	}
	return c
}

// Client is a client's tls.Config that trusts the CA and presents the
// device's certificate ("" for none).
func (p PKI) Client(t testing.TB, device string) *tls.Config {
	t.Helper()
	if device != "" && p.Files(device).Cert == "" {
		t.Fatalf("tlstest: no device %q", device)
	}
	cfg, err := p.Files(device).Load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
