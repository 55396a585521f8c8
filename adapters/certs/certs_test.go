package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/testing/tlstest"
)

// serve runs a TLS listener on loopback that answers every handshake
// with "ok" and returns its address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if c.(*tls.Conn).Handshake() == nil {
				c.Write([]byte("ok"))
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// dial connects with cfg and reads the server's answer: nil once "ok"
// came back, the handshake's error otherwise.
func dial(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c) // TLS 1.3: a refused client certificate shows on the first read
	if err == nil && string(b) != "ok" {
		err = errors.New("no answer")
	}
	return err
}

func TestServer_MutualTLS(t *testing.T) {
	pki := tlstest.New(t, "d1")
	other := tlstest.New(t, "d1") // a CA the server does not trust
	tests := []struct {
		name   string
		mode   certs.ClientAuth
		client *tls.Config
		ok     bool
	}{
		{"off, no client certificate", certs.ClientAuthOff, pki.Client(t, ""), true},
		{"optional, no client certificate", certs.ClientAuthOptional, pki.Client(t, ""), true},
		{"optional, a certificate of the CA", certs.ClientAuthOptional, pki.Client(t, "d1"), true},
		{"optional, a certificate of another CA", certs.ClientAuthOptional, withCert(pki.Client(t, ""), other.Client(t, "d1")), false},
		{"require, no client certificate", certs.ClientAuthRequire, pki.Client(t, ""), false},
		{"require, a certificate of the CA", certs.ClientAuthRequire, pki.Client(t, "d1"), true},
		{"require, a certificate of another CA", certs.ClientAuthRequire, withCert(pki.Client(t, ""), other.Client(t, "d1")), false},
		{"a client that does not trust the CA", certs.ClientAuthOff, other.Client(t, ""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, pki.ServerTLS(t, tc.mode))
			err := dial(addr, tc.client)
			if (err == nil) != tc.ok {
				t.Fatalf("dial: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// withCert is base presenting the client certificate of from.
func withCert(base, from *tls.Config) *tls.Config {
	base.Certificates = from.Certificates
	return base
}

func TestServer_HostNames(t *testing.T) {
	pki := tlstest.New(t)
	addr := serve(t, pki.ServerTLS(t, certs.ClientAuthOff))
	_, port, _ := net.SplitHostPort(addr)
	for _, host := range []string{"localhost", "127.0.0.1"} {
		cfg := pki.Client(t, "")
		cfg.ServerName = host
		if err := dial(net.JoinHostPort("127.0.0.1", port), cfg); err != nil {
			t.Errorf("as %s: %v", host, err)
		}
	}
	cfg := pki.Client(t, "")
	cfg.ServerName = "example.com"
	if err := dial(addr, cfg); err == nil {
		t.Error("a name the certificate does not hold was accepted")
	}
}

func TestPinned(t *testing.T) {
	pki, other := tlstest.New(t), tlstest.New(t)
	srv := pki.ServerTLS(t, certs.ClientAuthOff)
	addr := serve(t, srv)
	leaf := srv.Certificates[0].Leaf
	pinned := certs.Pinned(leaf, nil)
	pinned.ServerName = "any.name.at.all"
	if err := dial(addr, pinned); err != nil {
		t.Fatalf("pinned to the server's certificate: %v", err)
	}
	otherLeaf := other.ServerTLS(t, certs.ClientAuthOff).Certificates[0].Leaf
	if err := dial(addr, certs.Pinned(otherLeaf, nil)); !errors.Is(err, certs.ErrNotPinned) {
		t.Fatalf("pinned to another certificate: %v, want ErrNotPinned", err)
	}
}

func TestAuthority_EngineClient(t *testing.T) {
	// The engine's own client certificate: signed by an in-memory CA that
	// the listener trusts besides the devices' CA.
	pki := tlstest.New(t)
	ca, err := certs.NewAuthority("engine", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ClientCert("jetprop-engine", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := pki.ServerTLS(t, certs.ClientAuthRequire)
	srv.ClientCAs.AddCert(ca.Cert)
	addr := serve(t, srv)
	if err := dial(addr, certs.Pinned(srv.Certificates[0].Leaf, &cert)); err != nil {
		t.Fatalf("engine certificate: %v", err)
	}
	if err := dial(addr, certs.Pinned(srv.Certificates[0].Leaf, nil)); err == nil {
		t.Fatal("no certificate admitted under require")
	}
}

func TestDev_Files(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	files, err := certs.Dev(certs.DevConfig{Dir: dir, Hosts: []string{"gw.example", "10.1.2.3"}, Devices: []string{"d1", "d-2"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		perm os.FileMode
	}{
		{files.CA, 0o644}, {files.CAKey, 0o600}, {files.Server, 0o644}, {files.ServerKey, 0o600},
		{files.Devices[0].Cert, 0o644}, {files.Devices[0].Key, 0o600}, {files.Devices[1].Cert, 0o644}, {files.Devices[1].Key, 0o600},
	} {
		st, err := os.Stat(f.path)
		if err != nil || st.Mode().Perm() != f.perm {
			t.Errorf("%s: %v, mode %v, want %v", f.path, err, st.Mode().Perm(), f.perm)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	pool, err := certs.LoadPool(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := certs.LoadKeyPair(files.Server, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gw.example", "10.1.2.3"} {
		if _, err := srv.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	dev, err := certs.LoadKeyPair(files.Devices[1].Cert, files.Devices[1].Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || dev.Leaf.Subject.CommonName != "d-2" {
		t.Errorf("device certificate CN %q: %v", dev.Leaf.Subject.CommonName, err)
	}
}

func TestDev_RefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	first, err := certs.Dev(certs.DevConfig{Dir: dir, Hosts: []string{"localhost"}, Devices: []string{"d1"}})
	if err != nil {
		t.Fatal(err)
	}
	before := read(t, first.Server)

	_, err = certs.Dev(certs.DevConfig{Dir: dir, Hosts: []string{"localhost"}, Devices: []string{"d1", "d2"}})
	if !errors.Is(err, certs.ErrExists) || !strings.Contains(err.Error(), "server.pem") || !strings.Contains(err.Error(), "d1.pem") {
		t.Fatalf("second run: %v, want ErrExists naming server.pem and d1.pem", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d2.pem")); err == nil {
		t.Fatal("a refused run wrote d2.pem")
	}

	t.Run("the CA in the directory signs new devices", func(t *testing.T) {
		more, err := certs.Dev(certs.DevConfig{Dir: dir, Devices: []string{"d3"}})
		if err != nil || !more.ReusedCA || more.Server != "" {
			t.Fatalf("add a device: %+v, %v", more, err)
		}
		pool, _ := certs.LoadPool(first.CA)
		d3, err := certs.LoadKeyPair(more.Devices[0].Cert, more.Devices[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d3.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("d3 is not signed by the first CA: %v", err)
		}
	})
	t.Run("force makes a new CA and replaces the files", func(t *testing.T) {
		oldCA := read(t, first.CA)
		again, err := certs.Dev(certs.DevConfig{Dir: dir, Hosts: []string{"localhost"}, Devices: []string{"d1"}, Force: true})
		if err != nil || again.ReusedCA {
			t.Fatalf("force: %+v, %v", again, err)
		}
		if read(t, first.CA) == oldCA || read(t, first.Server) == before {
			t.Fatal("force left the CA or the server certificate as they were")
		}
		if st, _ := os.Stat(again.CAKey); st.Mode().Perm() != 0o600 {
			t.Fatalf("replaced key mode %v", st.Mode().Perm())
		}
	})
	t.Run("a CA certificate without its key", func(t *testing.T) {
		os.Remove(first.CAKey)
		if _, err := certs.Dev(certs.DevConfig{Dir: dir, Devices: []string{"d4"}}); !errors.Is(err, certs.ErrExists) {
			t.Fatalf("err %v, want ErrExists", err)
		}
	})
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDevConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     certs.DevConfig
		wantErr string
	}{
		{"no dir", certs.DevConfig{}, "directory"},
		{"path in a device id", certs.DevConfig{Dir: "x", Devices: []string{"../d"}}, "letters"},
		{"empty device id", certs.DevConfig{Dir: "x", Devices: []string{""}}, "letters"},
		{"device named like the CA", certs.DevConfig{Dir: "x", Devices: []string{"ca"}}, "taken"},
		{"device named like a key", certs.DevConfig{Dir: "x", Devices: []string{"d1-key"}}, "taken"},
		{"device twice", certs.DevConfig{Dir: "x", Devices: []string{"d1", "d1"}}, "twice"},
		{"host with a space", certs.DevConfig{Dir: "x", Hosts: []string{"a b"}}, "host"},
		{"fine", certs.DevConfig{Dir: "x", Hosts: []string{"localhost", "::1"}, Devices: []string{"01JABC", "d.1_x-y"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestServer_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     certs.Server
		want    certs.ClientAuth
		wantErr string
	}{
		{"cert and key", certs.Server{Cert: "c", Key: "k"}, certs.ClientAuthOff, ""},
		{"a CA means require", certs.Server{Cert: "c", Key: "k", CA: "ca"}, certs.ClientAuthRequire, ""},
		{"optional", certs.Server{Cert: "c", Key: "k", CA: "ca", ClientAuth: certs.ClientAuthOptional}, certs.ClientAuthOptional, ""},
		{"no key", certs.Server{Cert: "c"}, "", "key"},
		{"require without a CA", certs.Server{Cert: "c", Key: "k", ClientAuth: certs.ClientAuthRequire}, "", "needs a CA"},
		{"a CA with auth off", certs.Server{Cert: "c", Key: "k", CA: "ca", ClientAuth: certs.ClientAuthOff}, "", "client auth off"},
		{"unknown mode", certs.Server{Cert: "c", Key: "k", ClientAuth: "maybe"}, "", "want off, optional or require"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || tc.cfg.ClientAuth != tc.want {
				t.Fatalf("client auth %q, %v; want %q", tc.cfg.ClientAuth, err, tc.want)
			}
		})
	}
}

func TestLoad_Errors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	if _, err := certs.LoadPool(notPEM); !errors.Is(err, certs.ErrNoCertificate) {
		t.Errorf("LoadPool of a file without PEM: %v", err)
	}
	if _, err := certs.LoadPool(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPool of a missing file: %v", err)
	}
	if _, err := (certs.Client{Cert: "c"}).Load(); err == nil {
		t.Error("a client certificate without its key was accepted")
	}
	pki := tlstest.New(t, "d1")
	if _, err := certs.LoadKeyPair(pki.Devices[0].Cert, pki.ServerKey); err == nil {
		t.Error("a certificate with another's key was accepted")
	}
	if _, err := certs.LoadAuthority(pki.Server, pki.ServerKey); err == nil {
		t.Error("a server certificate was taken for a CA")
	}
}
