package main

import (
	"strings"
	"testing"
)

// TestCLI_ProxyTLS: the proxy reads Propeller's PROXY_MQTT_TLS_* variables.
func TestCLI_ProxyTLS(t *testing.T) {
	base := map[string]string{"PROXY_DOMAIN_ID": "d", "PROXY_CHANNEL_ID": "c", "PROXY_MQTT_ADDRESS": "tls://127.0.0.1:1"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	jetprop(t.Context(), with("PROXY_MQTT_TLS_CLIENT_CERT", "/x/c.pem"), "", "proxy").fails(t, exitError, "needs its key")
	jetprop(t.Context(), with("PROXY_MQTT_TLS_CA_CERT", "/nonexistent/ca.pem"), "", "proxy").fails(t, exitError, "/nonexistent/ca.pem")
	plain := with("PROXY_MQTT_TLS_CA_CERT", "/x/ca.pem")
	plain["PROXY_MQTT_ADDRESS"] = "tcp://127.0.0.1:1"
	jetprop(t.Context(), plain, "", "proxy").fails(t, exitError, "plain MQTT address")
	help := jetprop(t.Context(), nil, "", "proxy", "--help").ok(t)
	for _, env := range []string{"PROXY_MQTT_TLS_CA_CERT", "PROXY_MQTT_TLS_CLIENT_CERT", "PROXY_MQTT_TLS_CLIENT_KEY", "PROXY_MQTT_TLS_INSECURE_SKIP_VERIFY"} {
		if !strings.Contains(help, "env "+env+")") {
			t.Errorf("help does not name %s", env)
		}
	}
}
