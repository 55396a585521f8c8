package proplet

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// Ports an MQTT address without one gets, as Propeller's proplet does.
const (
	DefaultMQTTPort    = "1883"
	DefaultMQTTTLSPort = "8883"
)

// withDefaultPorts is withDefaultPort of each address of a comma-separated
// list.
func withDefaultPorts(list string) string {
	brokers := wire.SplitBrokers(list)
	for i, b := range brokers {
		brokers[i] = withDefaultPort(b)
	}
	return strings.Join(brokers, ",")
}

// withDefaultPort adds 8883 to a TLS address without a port, 1883 to a
// TCP one (paho dials host:port as written). WebSocket addresses are left
// as they are.
func withDefaultPort(address string) string {
	u, err := url.Parse(address)
	if err != nil || u.Host == "" || u.Port() != "" || u.Scheme == "ws" || u.Scheme == "wss" {
		return address
	}
	port := DefaultMQTTPort
	if certs.IsTLSURL(address) {
		port = DefaultMQTTTLSPort
	}
	u.Host = net.JoinHostPort(u.Hostname(), port)
	return u.String()
}

// validateTLS: a certificate needs its key, and TLS files need a TLS
// address (they would be ignored and the credentials sent in the clear).
func (c *Config) validateTLS() []error {
	var errs []error
	if (c.MQTTClientCert == "") != (c.MQTTClientKey == "") {
		errs = append(errs, errors.New("a client certificate needs its key (--mqtt-cert with --mqtt-key, or PROPLET_MQTT_TLS_CLIENT_CERT with PROPLET_MQTT_TLS_CLIENT_KEY)"))
	}
	files := c.MQTTCACert != "" || c.MQTTClientCert != "" || c.MQTTClientKey != "" || c.MQTTInsecureSkipVerify
	if files && !certs.IsTLSURL(c.MQTTAddress) {
		errs = append(errs, errors.New("TLS settings for a plain MQTT address: use ssl://, tls://, mqtts:// or wss:// in --mqtt-url or PROPLET_MQTT_ADDRESS (PROPLET_MQTT_TLS_* or --mqtt-ca, --mqtt-cert, --mqtt-key are set)"))
	}
	return errs
}

// mqttTLS is the MQTT connection's TLS: Config.TLS, else, for a TLS
// address, one made from the files (no CA: the system's CAs); nil for a
// plain address.
func (c *Config) mqttTLS() (*tls.Config, error) {
	if c.TLS != nil || !certs.IsTLSURL(c.MQTTAddress) {
		return c.TLS, nil
	}
	return certs.Client{CA: c.MQTTCACert, Cert: c.MQTTClientCert, Key: c.MQTTClientKey, InsecureSkipVerify: c.MQTTInsecureSkipVerify}.Load()
}
