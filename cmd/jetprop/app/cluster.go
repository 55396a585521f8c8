package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
)

// DefaultClusterName is the cluster's name when --cluster-listen is given
// without --cluster-name.
const DefaultClusterName = "jetprop"

// Clustered reports whether the embedded server is a cluster node.
func (c *Config) Clustered() bool { return c.ClusterListen != "" }

// validateCluster checks the cluster flags, and the URL lists of
// --nats-url and --mqtt-url.
func (c *Config) validateCluster() error {
	if err := c.validateURLs(); err != nil {
		return err
	}
	if !c.Clustered() {
		if c.ClusterName != "" || c.Routes != "" || c.ClusterSecret != "" || c.ClusterSecretFile != "" {
			return errors.New("--cluster-name, --routes and the cluster secret need --cluster-listen (this node's route address)")
		}
		return nil
	}
	switch {
	case c.NATSURL != "":
		return errors.New("--cluster-listen makes the embedded server a cluster node; with --nats-url there is no embedded server")
	case !validAddr(c.ClusterListen):
		return fmt.Errorf("--cluster-listen %q: want host:port, e.g. 0.0.0.0:6222", c.ClusterListen)
	case c.ServerName == "":
		return errors.New("--server-name is required with --cluster-listen: a name of its own for each node (n1, n2, ...)")
	case c.ClusterSecret != "" && c.ClusterSecretFile != "":
		return errors.New("JETPROP_CLUSTER_SECRET and --cluster-secret-file exclude each other")
	case c.ClusterSecret == "" && c.ClusterSecretFile == "":
		return errors.New("a cluster node needs the secret every node shares: --cluster-secret-file (make one with: head -c 32 /dev/urandom | base64 > FILE), or JETPROP_CLUSTER_SECRET")
	}
	if c.ClusterSecret != "" && len(c.ClusterSecret) < natsserver.MinClusterSecret {
		return fmt.Errorf("JETPROP_CLUSTER_SECRET: %d bytes, want at least %d", len(c.ClusterSecret), natsserver.MinClusterSecret)
	}
	for _, r := range wire.SplitBrokers(c.Routes) {
		if _, err := natsserver.ParseRoute(r); err != nil {
			return fmt.Errorf("--routes: %w", err)
		}
	}
	return nil
}

// validateURLs checks that --nats-url and --mqtt-url are URLs or
// comma-separated lists of them.
func (c *Config) validateURLs() error {
	if c.MQTTURL != "" {
		if _, err := wire.Brokers(c.MQTTURL); err != nil {
			return fmt.Errorf("--mqtt-url: %w", err)
		}
	}
	for _, s := range wire.SplitBrokers(c.NATSURL) {
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			return fmt.Errorf("--nats-url: %q: want nats://[user:password@]host:port (several: comma-separated)", redact(s))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("--nats-url: %q: scheme %q, want nats, tls, ws or wss", redact(s), u.Scheme)
		}
	}
	return nil
}

// clusterConfig is the embedded server's cluster, nil when it is not a
// node of one.
func (c *Config) clusterConfig() (*natsserver.Cluster, error) {
	if !c.Clustered() {
		return nil, nil
	}
	secret := c.ClusterSecret
	if c.ClusterSecretFile != "" {
		b, err := os.ReadFile(c.ClusterSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--cluster-secret-file: %w", err)
		}
		if secret = strings.TrimSpace(string(b)); len(secret) < natsserver.MinClusterSecret {
			return nil, fmt.Errorf("--cluster-secret-file %s: %d bytes, want at least %d", c.ClusterSecretFile, len(secret), natsserver.MinClusterSecret)
		}
	}
	host, port, _ := net.SplitHostPort(c.ClusterListen)
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("--cluster-listen %q: port: %w", c.ClusterListen, err)
	}
	name := c.ClusterName
	if name == "" {
		name = DefaultClusterName
	}
	return &natsserver.Cluster{Name: name, Host: host, Port: p, Routes: wire.SplitBrokers(c.Routes), Secret: secret, Replicas: c.Replicas}, nil
}

// redact is a comma-separated list of URLs without the credentials in them.
func redact(list string) string {
	var out []string
	for _, s := range wire.SplitBrokers(list) {
		out = append(out, withoutUser(s))
	}
	return strings.Join(out, ",")
}
