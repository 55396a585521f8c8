package main

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/internal/envflag"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
)

// serverTLSFlags declares the TLS flags of up and server.
func serverTLSFlags(s *envflag.Set, c *app.Config) {
	s.String(&c.TLSCert, "tls-cert", "", "PEM `file` of the certificate of the HTTP, NATS and MQTT listeners (with its chain); turns TLS on", "JETPROP_TLS_CERT")
	s.String(&c.TLSKey, "tls-key", "", "PEM `file` of its private key", "JETPROP_TLS_KEY")
	s.String(&c.TLSCA, "tls-ca", "", "PEM `file` of the CAs that sign devices' client certificates, checked on the NATS and MQTT ports", "JETPROP_TLS_CA")
	s.String(&c.TLSClientAuth, "tls-client-auth", "", "client certificates on the NATS and MQTT ports: off, optional (checked when given) or require (default: require with --tls-ca, else off)", "JETPROP_TLS_CLIENT_AUTH")
	s.String(&c.NATSCA, "nats-ca", "", "PEM `file` of the CA of the server given by --nats-url (for its tls:// NATS and MQTT URLs)", "JETPROP_NATS_CA")
	s.String(&c.NATSCert, "nats-cert", "", "PEM `file` of the engine's client certificate for the server given by --nats-url", "JETPROP_NATS_CERT")
	s.String(&c.NATSKey, "nats-key", "", "PEM `file` of its private key", "JETPROP_NATS_KEY")
}

// caFile is the --ca flag: a PEM file of CAs, read when the flag is set,
// so a missing or empty file is a usage error.
type caFile struct {
	path string
	pool *x509.CertPool
}

func (f *caFile) String() string {
	if f == nil {
		return ""
	}
	return f.path
}

func (f *caFile) Set(path string) error {
	pool, err := certs.LoadPool(path)
	if err != nil {
		return err
	}
	f.path, f.pool = path, pool
	return nil
}

// apiClient is the API client of server, trusting the CAs of ca when
// given (else the system's).
func apiClient(server string, ca *caFile, opts ...client.Option) *client.Client {
	if ca.pool == nil {
		return client.New(server, nil, opts...)
	}
	return client.NewTLS(server, &tls.Config{MinVersion: certs.MinVersion, RootCAs: ca.pool}, opts...)
}
