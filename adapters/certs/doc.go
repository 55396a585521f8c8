// Package certs makes and loads the X.509 certificates and TLS
// configurations of jetprop's listeners and clients: a listener's
// tls.Config from PEM files with optional mutual TLS (Server), a client's
// that trusts a private CA (Client), one that trusts exactly one server
// certificate (Pinned), the development CA and certificates of `jetprop
// certs dev` (Dev), and the in-memory CA that signs the engine's own
// client certificates (Authority). Keys are ECDSA P-256; standard library
// only, so the proplet and the proxy can use it.
package certs
