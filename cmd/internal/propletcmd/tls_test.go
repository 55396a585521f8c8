package propletcmd_test

import "testing"

// TestFlags_TLS: Propeller's PROPLET_MQTT_TLS_* variables, and the flags.
func TestFlags_TLS(t *testing.T) {
	c, set := parse(t, map[string]string{
		"PROPLET_MQTT_ADDRESS":                  "ssl://gw:8883",
		"PROPLET_MQTT_TLS_CA_CERT":              "/pki/ca.pem",
		"PROPLET_MQTT_TLS_CLIENT_CERT":          "/pki/d1.pem",
		"PROPLET_MQTT_TLS_CLIENT_KEY":           "/pki/d1-key.pem",
		"PROPLET_MQTT_TLS_INSECURE_SKIP_VERIFY": "true",
	})
	if set.Err() != nil || c.MQTTAddress != "ssl://gw:8883" || c.MQTTCACert != "/pki/ca.pem" || c.MQTTClientCert != "/pki/d1.pem" ||
		c.MQTTClientKey != "/pki/d1-key.pem" || !c.MQTTInsecureSkipVerify {
		t.Fatalf("from the environment: %+v, %v", c, set.Err())
	}
	c, _ = parse(t, map[string]string{"PROPLET_MQTT_TLS_CA_CERT": "/env/ca.pem"},
		"--mqtt-url", "tls://gw", "--mqtt-ca", "/f/ca.pem", "--mqtt-cert", "/f/d.pem", "--mqtt-key", "/f/d-key.pem")
	if c.MQTTCACert != "/f/ca.pem" || c.MQTTClientCert != "/f/d.pem" || c.MQTTClientKey != "/f/d-key.pem" || c.MQTTInsecureSkipVerify {
		t.Fatalf("flags: %+v", c)
	}
}
