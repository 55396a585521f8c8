package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jetprop/jetprop/adapters/certs"
)

// validateTLS: a certificate needs its key, and TLS files need a TLS
// address (they would be ignored and the credentials sent in the clear).
func (c *Config) validateTLS() error {
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	if c.TLS != (certs.Client{}) && !certs.IsTLSURL(c.MQTTAddress) {
		return errors.New("proxy: TLS settings for a plain MQTT address: use ssl://, tls:// or mqtts://")
	}
	return nil
}

// mqttTLS is the broker connection's TLS: for a TLS address, the files
// (no CA: the system's CAs); nil for a plain one.
func (c Config) mqttTLS() (*tls.Config, error) {
	if !certs.IsTLSURL(c.MQTTAddress) {
		return nil, nil
	}
	cfg, err := c.TLS.Load()
	if err != nil {
		return nil, fmt.Errorf("proxy: mqtt tls: %w", err)
	}
	return cfg, nil
}

// warnInsecure logs that the broker is not verified, when it is not.
func (c Config) warnInsecure(log *slog.Logger) {
	if c.TLS.InsecureSkipVerify {
		log.Warn("the MQTT broker's certificate is not verified (--mqtt-insecure-skip-verify, PROXY_MQTT_TLS_INSECURE_SKIP_VERIFY)")
	}
}
