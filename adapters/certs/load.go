package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// MinVersion is the oldest TLS version jetprop speaks.
const MinVersion = tls.VersionTLS12

// ErrNoCertificate: a CA file holds no PEM certificate.
var ErrNoCertificate = errors.New("certs: no PEM certificate")

// Server names the PEM files of a TLS listener.
type Server struct {
	Cert string // the certificate (with its chain, leaf first)
	Key  string // its private key
	// CA is a bundle of CA certificates that client certificates are
	// verified against; needed unless ClientAuth is off.
	CA string
	// ClientAuth defaults to DefaultClientAuth(CA).
	ClientAuth ClientAuth
}

func (s *Server) setDefaults() {
	if s.ClientAuth == "" {
		s.ClientAuth = DefaultClientAuth(s.CA)
	}
}

// Validate fills the defaults and checks that the files go together.
func (s *Server) Validate() error {
	s.setDefaults()
	if err := s.ClientAuth.Validate(); err != nil {
		return err
	}
	switch {
	case s.Cert == "" || s.Key == "":
		return errors.New("certs: a listener needs a certificate and its key")
	case s.ClientAuth != ClientAuthOff && s.CA == "":
		return fmt.Errorf("certs: client auth %s needs a CA to verify client certificates with", s.ClientAuth)
	case s.ClientAuth == ClientAuthOff && s.CA != "":
		return errors.New("certs: a CA to verify client certificates with, but client auth off")
	}
	return nil
}

// Load validates s and reads its files into a listener's tls.Config.
// ClientCAs is a fresh pool: the caller may add to it.
func (s Server) Load() (*tls.Config, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	kp, err := LoadKeyPair(s.Cert, s.Key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{kp}, ClientAuth: s.ClientAuth.TLS()}
	if s.ClientAuth != ClientAuthOff {
		if cfg.ClientCAs, err = LoadPool(s.CA); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Client names the PEM files of a TLS client. All are optional: no CA
// trusts the system's CAs, no certificate presents none.
type Client struct {
	CA   string // CA certificates the server's certificate is verified against
	Cert string // client certificate, for mutual TLS
	Key  string // its private key
	// InsecureSkipVerify accepts any server certificate. For labs only.
	InsecureSkipVerify bool
}

// Validate checks that a certificate comes with its key.
func (c Client) Validate() error {
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("certs: a client certificate needs its key, and a key its certificate")
	}
	return nil
}

// Load validates c and reads its files into a client's tls.Config.
func (c Client) Load() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CA != "" {
		pool, err := LoadPool(c.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.Cert != "" {
		kp, err := LoadKeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

// LoadPool reads a PEM bundle of CA certificates.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w in %s", ErrNoCertificate, path)
	}
	return pool, nil
}

// LoadKeyPair reads a certificate (leaf first) and its private key, with
// Leaf parsed.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return kp, fmt.Errorf("certs: %s and %s: %w", certFile, keyFile, err)
	}
	return kp, nil
}

// Pinned is a client's tls.Config that accepts exactly one server
// certificate, whatever the host name it dials: the engine's connections
// to its own listeners, which hold that certificate. A non-nil cert is
// presented for mutual TLS.
func Pinned(leaf *x509.Certificate, cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{
		MinVersion: MinVersion,
		// The chain and host name are not checked: VerifyConnection
		// accepts the one certificate this process serves, and no other.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(leaf) {
				return ErrNotPinned
			}
			return nil
		},
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// ErrNotPinned: the server presented another certificate than the pinned one.
var ErrNotPinned = errors.New("certs: the server's certificate is not the pinned one")

// encodeCerts is the PEM of a chain.
func encodeCerts(chain [][]byte) []byte {
	var out []byte
	for _, der := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

// tlsSchemes are the URL schemes that mean TLS: paho's ssl, tls, mqtts and
// wss (tls is nats.go's too).
var tlsSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "wss": true}

// IsTLSURL reports whether a broker URL speaks TLS (ssl://, tls://,
// mqtts:// or wss://); of a comma-separated list, whether the first does
// (wire.Brokers refuses lists that mix).
func IsTLSURL(rawURL string) bool {
	first, _, _ := strings.Cut(rawURL, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	return err == nil && tlsSchemes[u.Scheme]
}
