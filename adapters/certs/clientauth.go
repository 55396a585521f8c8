package certs

import (
	"crypto/tls"
	"fmt"
)

// ClientAuth says whether a listener asks clients for a certificate.
type ClientAuth string

// The client authentication modes.
const (
	// ClientAuthOff asks for no client certificate.
	ClientAuthOff ClientAuth = "off"
	// ClientAuthOptional verifies a client certificate when one is given
	// and admits clients without one.
	ClientAuthOptional ClientAuth = "optional"
	// ClientAuthRequire admits only clients whose certificate a trusted CA
	// signed (mutual TLS).
	ClientAuthRequire ClientAuth = "require"
)

// DefaultClientAuth is the mode when none is given: require when there is
// a CA to verify client certificates with, else off.
func DefaultClientAuth(ca string) ClientAuth {
	if ca != "" {
		return ClientAuthRequire
	}
	return ClientAuthOff
}

// Validate checks that m is one of the modes.
func (m ClientAuth) Validate() error {
	switch m {
	case ClientAuthOff, ClientAuthOptional, ClientAuthRequire:
		return nil
	}
	return fmt.Errorf("client auth %q: want off, optional or require", string(m))
}

// TLS is the crypto/tls form of m.
func (m ClientAuth) TLS() tls.ClientAuthType {
	switch m {
	case ClientAuthOptional:
		return tls.VerifyClientCertIfGiven
	case ClientAuthRequire:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}
