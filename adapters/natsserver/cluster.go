package natsserver

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Cluster defaults.
const (
	DefaultClusterPort = 6222
	// MinClusterSecret is the shortest cluster secret accepted (bytes).
	MinClusterSecret = 16
	// RouteUser is the user name routes authenticate with; the password is
	// derived from the cluster secret.
	RouteUser = "jetprop-route"
)

// ErrClusterSecret: a cluster node needs the secret shared by every node.
var ErrClusterSecret = fmt.Errorf("natsserver: a cluster needs a secret of at least %d bytes, the same on every node", MinClusterSecret)

// Cluster makes the embedded server a node of a nats-server cluster:
// routes to the other nodes, JetStream clustered (the meta group and every
// stream's replicas in Raft), the MQTT listener's state replicated.
type Cluster struct {
	Name string // the cluster's name, the same on every node (required)
	Host string // listen address of the routes (default Config.Host)
	Port int    // route port (default 6222; -1 random)
	// Routes are host:port (or nats-route://host:port) of the other nodes'
	// route ports; a node's own address may be in the list too, so every
	// node can be given the same list.
	Routes []string
	// Secret is shared by every node: the engine's passwords, the auth
	// callout's signing key and the routes' password are derived from
	// it, so any node admits the engine and accepts a callout answered by
	// any node (see docs/RATIONALE.md).
	Secret string
	// Replicas of the MQTT listener's streams, and the JetStream peers
	// Start waits for before returning (default 3, or fewer when fewer
	// routes are given).
	Replicas int
}

func (c *Cluster) setDefaults(host string) {
	c.Host = cmp.Or(c.Host, host)
	c.Port = cmp.Or(c.Port, DefaultClusterPort)
	if c.Replicas == 0 {
		c.Replicas = min(3, len(c.Routes)+1)
	}
}

// validate checks a cluster config after defaults.
func (c *Cluster) validate(serverName string) error {
	switch {
	case c.Name == "":
		return errors.New("natsserver: a cluster needs a name (the same on every node)")
	case serverName == "":
		return errors.New("natsserver: a cluster node needs a server name of its own")
	case len(c.Secret) < MinClusterSecret:
		return ErrClusterSecret
	case c.Port < -1 || c.Port > 65535:
		return fmt.Errorf("natsserver: cluster port %d out of range", c.Port)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("natsserver: cluster replicas %d: want 1 to 5", c.Replicas)
	}
	_, err := c.routeURLs()
	return err
}

// ParseRoute reads one route: host:port, or nats-route://host:port (also
// nats://, tls://). It rejects credentials: the cluster secret gives them.
func ParseRoute(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	raw := s
	if !strings.Contains(s, "://") {
		raw = "nats-route://" + s
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("route %q: want host:port or nats-route://host:port", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("route %q: no credentials in a route; the cluster secret gives them", s)
	}
	switch u.Scheme {
	case "nats-route", "nats", "tls":
	default:
		return nil, fmt.Errorf("route %q: scheme %q, want nats-route, nats or tls", s, u.Scheme)
	}
	return u, nil
}

func (c *Cluster) routeURLs() ([]*url.URL, error) {
	var out []*url.URL
	for _, r := range c.Routes {
		u, err := ParseRoute(r)
		if err != nil {
			return nil, fmt.Errorf("natsserver: %w", err)
		}
		out = append(out, u)
	}
	return out, nil
}

// apply sets the cluster options: routes authenticated with the derived
// route password, and the MQTT listener's streams at Replicas.
func (c *Cluster) apply(o *server.Options, a *auth) error {
	routes, err := c.routeURLs()
	if err != nil {
		return err
	}
	for _, u := range routes {
		u.User = url.UserPassword(RouteUser, a.route)
	}
	o.Cluster = server.ClusterOpts{Name: c.Name, Host: c.Host, Port: c.Port, Username: RouteUser, Password: a.route}
	o.Routes = routes
	o.MQTT.StreamReplicas = c.Replicas
	return nil
}

// derive is the HMAC-SHA256 of label under the cluster secret: one
// independent value per use, the same on every node.
func derive(secret, label string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("jetprop cluster " + label))
	return m.Sum(nil)
}

// clusterAuth is the auth of a cluster node: everything derived from the
// secret, the same on every node.
func clusterAuth(secret string) (*auth, error) {
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteAccount, derive(secret, "auth callout issuer"))
	if err != nil {
		return nil, fmt.Errorf("natsserver: callout key: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return &auth{
		engine:     hex.EncodeToString(derive(secret, "engine nats password")[:24]),
		engineMQTT: hex.EncodeToString(derive(secret, "engine mqtt password")[:24]),
		route:      hex.EncodeToString(derive(secret, "route password")[:24]),
		issuer:     kp, issuerPub: pub,
	}, nil
}

// clusterLogEvery is how often a node that waits for its cluster says so.
const clusterLogEvery = 5 * time.Second

// waitCluster waits for the JetStream meta leader (as long as ctx lasts:
// a node waits for its peers), then up to s.cfg.Ready for Replicas nodes
// in all, logging what it waits for every few seconds.
func (s *Server) waitCluster(ctx context.Context) error {
	log := s.cfg.Logger
	next := time.Now()
	var peersSince time.Time
	for {
		leader, nodes := s.MetaLeader(), s.Nodes()
		switch {
		case leader != "" && len(nodes) >= s.cfg.Cluster.Replicas:
			log.Info("cluster ready", "meta_leader", leader, "nodes", strings.Join(nodes, ","))
			return nil
		case leader != "" && peersSince.IsZero():
			peersSince = time.Now()
		case leader != "" && time.Since(peersSince) > s.cfg.Ready:
			log.Warn("going on with fewer nodes than --replicas: streams not yet created cannot be (others are fine)",
				"meta_leader", leader, "nodes", strings.Join(nodes, ","), "want", s.cfg.Cluster.Replicas)
			return nil
		}
		if time.Now().After(next) {
			waitFor := "the JetStream meta leader (a majority of the cluster's nodes must be up)"
			if leader != "" {
				waitFor = fmt.Sprintf("%d nodes for streams at %d replicas", s.cfg.Cluster.Replicas, s.cfg.Cluster.Replicas)
			}
			log.Info("waiting for "+waitFor, "cluster", s.cfg.Cluster.Name, "nodes_connected", strings.Join(nodes, ","), "routes", strings.Join(s.cfg.Cluster.Routes, ","))
			next = time.Now().Add(clusterLogEvery)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsserver: waiting for the cluster: %w", context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MetaLeader is the server name of the JetStream meta leader as this node
// knows it ("" while there is none; this server's name when it is not
// clustered).
func (s *Server) MetaLeader() string {
	if !s.ns.JetStreamIsClustered() {
		return s.ns.Name()
	}
	jsz, err := s.ns.Jsz(nil)
	if err != nil || jsz.Meta == nil {
		return ""
	}
	return jsz.Meta.Leader
}

// Nodes are the server names of this node and of the nodes it has routes
// to, sorted.
func (s *Server) Nodes() []string {
	nodes := []string{s.ns.Name()}
	rz, err := s.ns.Routez(nil)
	if err != nil {
		return nodes
	}
	for _, r := range rz.Routes {
		if r.RemoteName != "" && !slices.Contains(nodes, r.RemoteName) {
			nodes = append(nodes, r.RemoteName)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// Name is the server's name.
func (s *Server) Name() string { return s.ns.Name() }

// ClusterURL is nats-route://host:port of the route listener ("" when not
// clustered).
func (s *Server) ClusterURL() string {
	if s.cfg.Cluster == nil {
		return ""
	}
	return fmt.Sprintf("nats-route://%s:%d", connectHost(s.cfg.Cluster.Host), s.opts.Cluster.Port)
}
