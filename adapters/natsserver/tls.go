package natsserver

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MQTTTLSTimeout bounds an MQTT client's TLS handshake: longer than
// nats-server's 2 s, since small devices on slow links take seconds to
// sign with their key.
const MQTTTLSTimeout = 10 * time.Second

// applyTLS gives the NATS and MQTT listeners Config.TLS, each its own
// copy. With TLS they refuse plain TCP; in-process connections (the
// engine's) are never TLS. ClientAuth RequireAndVerifyClientCert makes
// both listeners refuse clients without a certificate signed by one of
// ClientCAs; VerifyClientCertIfGiven verifies the ones that present one.
func (c *Config) applyTLS(o *server.Options) {
	if c.TLS == nil {
		return
	}
	o.TLSConfig = c.TLS.Clone()
	o.MQTT.TLSConfig = c.TLS.Clone()
	o.MQTT.TLSTimeout = MQTTTLSTimeout.Seconds()
}

func (c *Config) mqttScheme() string {
	if c.TLS != nil {
		return "tls"
	}
	return "tcp"
}
