package wire

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// brokerSchemes are the URL schemes of an MQTT broker address.
var brokerSchemes = map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": true, "wss": true}

// ErrNoBroker: an empty list of broker addresses.
var ErrNoBroker = errors.New("no broker address")

// SplitBrokers splits a comma-separated list of broker addresses, trimming
// spaces and dropping empty items. A client given several connects to the
// first that answers and, when its connection is lost, to the next.
func SplitBrokers(list string) []string {
	var out []string
	for b := range strings.SplitSeq(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Brokers splits list (SplitBrokers) and checks that each item is
// scheme://host[:port] with an MQTT scheme (tcp, mqtt, ssl, tls, mqtts,
// ws or wss) and that TLS and plain addresses are not mixed (the client
// has one TLS configuration).
func Brokers(list string) ([]string, error) {
	brokers := SplitBrokers(list)
	if len(brokers) == 0 {
		return nil, ErrNoBroker
	}
	for _, b := range brokers {
		u, err := url.Parse(b)
		if err != nil || !brokerSchemes[u.Scheme] || u.Hostname() == "" {
			return nil, fmt.Errorf("broker address %q: want scheme://host:port with scheme tcp, mqtt, ssl, tls, mqtts, ws or wss (several: comma-separated)", b)
		}
		if tlsBroker(b) != tlsBroker(brokers[0]) {
			return nil, fmt.Errorf("broker addresses %q and %q: all TLS (ssl, tls, mqtts, wss) or none", brokers[0], b)
		}
	}
	return brokers, nil
}

// TLSBroker reports whether a broker address speaks TLS (ssl://, tls://,
// mqtts:// or wss://).
func tlsBroker(b string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(b), "://")
	switch strings.ToLower(scheme) {
	case "ssl", "tls", "mqtts", "wss":
		return true
	}
	return false
}
