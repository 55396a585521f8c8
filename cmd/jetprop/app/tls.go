package app

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/adapters/certs"
)

// Common names of the client certificates the engine signs for its own
// MQTT connections when the listeners ask for client certificates.
const (
	EngineCertName       = "jetprop-engine"
	LocalPropletCertName = "jetprop-local-proplet"
)

// validateTLS checks that the TLS flags go together.
func (c *Config) validateTLS() error {
	mode := certs.ClientAuth(c.TLSClientAuth)
	if err := mode.Validate(); err != nil {
		return fmt.Errorf("--tls-client-auth %q: want off, optional or require", c.TLSClientAuth)
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.TLSCert == "" && (c.TLSCA != "" || mode != certs.ClientAuthOff):
		return errors.New("--tls-ca and --tls-client-auth need --tls-cert and --tls-key")
	case mode != certs.ClientAuthOff && c.TLSCA == "":
		return fmt.Errorf("--tls-client-auth %s needs --tls-ca, the CA that signs the devices' certificates", mode)
	case mode == certs.ClientAuthOff && c.TLSCA != "":
		return errors.New("--tls-ca with --tls-client-auth off: the CA would verify nothing")
	case c.NATSURL != "" && c.TLSCA != "":
		return errors.New("--tls-ca and --tls-client-auth are for the embedded server's listeners; the server given by --nats-url has its own")
	case c.NATSURL == "" && (c.NATSCA != "" || c.NATSCert != "" || c.NATSKey != ""):
		return errors.New("--nats-ca, --nats-cert and --nats-key are for the server given by --nats-url")
	case (c.NATSCert == "") != (c.NATSKey == ""):
		return errors.New("--nats-cert and --nats-key go together")
	}
	return nil
}

// tlsSetup is the TLS of the listeners and of the engine's own
// connections; a nil field is plain TCP.
type tlsSetup struct {
	listeners *tls.Config // NATS and MQTT of the embedded server
	http      *tls.Config // the HTTP API: no client certificates
	engine    *tls.Config // the engine's MQTT connection; with --nats-url, its NATS connection too
	proplets  *tls.Config // the MQTT connections of the local proplets (up)
}

// newTLSSetup loads the files. The engine's connections to its own
// listeners trust exactly the listeners' certificate (certs.Pinned), so
// they work whatever host names it holds. When the listeners ask for
// client certificates, a CA made in memory at start, trusted by the
// listeners beside --tls-ca, signs one for the engine and one for the
// local proplets; its key never leaves this process.
func newTLSSetup(c Config) (tlsSetup, error) {
	if c.NATSURL != "" {
		return externalTLS(c)
	}
	if c.TLSCert == "" {
		return tlsSetup{}, nil
	}
	srv, err := certs.Server{Cert: c.TLSCert, Key: c.TLSKey, CA: c.TLSCA, ClientAuth: certs.ClientAuth(c.TLSClientAuth)}.Load()
	if err != nil {
		return tlsSetup{}, err
	}
	http := srv.Clone()
	http.ClientAuth, http.ClientCAs = tls.NoClientCert, nil
	leaf := srv.Certificates[0].Leaf
	s := tlsSetup{listeners: srv, http: http, engine: certs.Pinned(leaf, nil), proplets: certs.Pinned(leaf, nil)}
	if srv.ClientAuth == tls.NoClientCert {
		return s, nil
	}
	engine, proplets, err := selfSigned(srv)
	if err != nil {
		return tlsSetup{}, err
	}
	s.engine, s.proplets = certs.Pinned(leaf, &engine), certs.Pinned(leaf, &proplets)
	return s, nil
}

// selfSigned makes the in-memory CA, adds it to the listeners' client
// CAs, and signs the engine's and the local proplets' certificates.
func selfSigned(srv *tls.Config) (engine, proplets tls.Certificate, err error) {
	ca, err := certs.NewAuthority("jetprop engine (in memory)", certs.DefaultCAValidity)
	if err != nil {
		return engine, proplets, err
	}
	srv.ClientCAs.AddCert(ca.Cert)
	if engine, err = ca.ClientCert(EngineCertName, certs.DefaultCAValidity); err != nil {
		return engine, proplets, err
	}
	proplets, err = ca.ClientCert(LocalPropletCertName, certs.DefaultCAValidity)
	return engine, proplets, err
}

// externalTLS: the HTTP API's certificate, and the client side of the
// connections to the server given by --nats-url and --mqtt-url.
func externalTLS(c Config) (tlsSetup, error) {
	var s tlsSetup
	if c.TLSCert != "" {
		http, err := certs.Server{Cert: c.TLSCert, Key: c.TLSKey, ClientAuth: certs.ClientAuthOff}.Load()
		if err != nil {
			return s, err
		}
		s.http = http
	}
	if c.NATSCA != "" || c.NATSCert != "" {
		cl, err := certs.Client{CA: c.NATSCA, Cert: c.NATSCert, Key: c.NATSKey}.Load()
		if err != nil {
			return s, err
		}
		s.engine, s.proplets = cl, cl
	}
	return s, nil
}

// natsTLS is the option that makes the connection to --nats-url TLS, if any.
func (s tlsSetup) natsTLS() []nats.Option {
	if s.engine == nil {
		return nil
	}
	return []nats.Option{nats.Secure(s.engine)}
}
