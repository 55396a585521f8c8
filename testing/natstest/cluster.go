package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/natsserver"
)

// ClusterSecret is the secret the nodes of StartCluster share.
const ClusterSecret = "natstest-cluster-secret-0123456789"

// Cluster is n embedded servers on loopback, each with JetStream, an MQTT
// listener and routes to the others, its store in a temp dir of its own.
// A node can be stopped and started again on its data dir and its ports,
// so clients given every node's URL find it again.
type Cluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*node
}

type node struct {
	name               string
	dir                string
	natsPort, mqttPort int // -1 until the first start picked them
	clusterPort        int
	srv                *natsserver.Server // nil while stopped
}

// StartCluster starts n nodes (named n0, n1, ...) and returns once each
// of them knows the JetStream meta leader and sees every other node.
// Streams can then be created with up to min(n, 3) replicas. Every node is
// shut down at cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	ports := freePorts(t, n)
	for i := range n {
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i), dir: t.TempDir(), natsPort: -1, mqttPort: -1, clusterPort: ports[i]})
	}
	t.Cleanup(c.shutdown)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = c.start(i) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start cluster node %d: %v", i, err)
		}
	}
	return c
}

// freePorts reserves n loopback ports and gives them back for the routes:
// each node's route port must be known to the others before any starts.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// start starts node i on its dir and ports, with routes to every other
// node, and waits until it has joined.
func (c *Cluster) start(i int) error {
	c.mu.Lock()
	nd := c.nodes[i]
	var routes []string
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, fmt.Sprintf("127.0.0.1:%d", o.clusterPort))
		}
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsserver.Start(ctx, natsserver.Config{
		DataDir: nd.dir, ServerName: nd.name, NATSPort: nd.natsPort, MQTTPort: nd.mqttPort,
		MaxStore: 1 << 30, MaxMemory: 64 << 20, Ready: 15 * time.Second, Authorize: OpenDevices,
		Cluster: &natsserver.Cluster{Name: "natstest", Port: nd.clusterPort, Routes: routes, Secret: ClusterSecret, Replicas: min(len(c.nodes), 3)},
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	nd.srv = s
	nd.natsPort, nd.mqttPort = port(s.ClientURL()), port("tcp://"+s.MQTTAddr())
	return nil
}

func port(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		return -1
	}
	var p int
	fmt.Sscan(u.Port(), &p)
	return p
}

// N is the number of nodes.
func (c *Cluster) N() int { return len(c.nodes) }

// Node is node i's server, nil while it is stopped.
func (c *Cluster) Node(i int) *natsserver.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Stop shuts node i down (its store stays in its dir).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
	}
}

// Restart starts node i again on its data dir and its former ports, and
// waits until it has joined the cluster.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.Node(i) != nil {
		c.t.Fatalf("restart node %d: it runs", i)
	}
	if err := c.start(i); err != nil {
		c.t.Fatalf("restart node %d: %v", i, err)
	}
}

// MetaLeader is the index of the node that is the JetStream meta leader,
// -1 when no running node is.
func (c *Cluster) MetaLeader() int {
	return c.find(func(s *natsserver.Server) bool { return s.NATS().JetStreamIsLeader() })
}

// StreamLeader is the index of the node that leads stream in account
// (natsserver.EngineAccount for the engine's streams), -1 when none does.
func (c *Cluster) StreamLeader(account, stream string) int {
	return c.find(func(s *natsserver.Server) bool { return s.NATS().JetStreamIsStreamLeader(account, stream) })
}

func (c *Cluster) find(is func(*natsserver.Server) bool) int {
	for i := range c.nodes {
		if s := c.Node(i); s != nil && is(s) {
			return i
		}
	}
	return -1
}

// EngineURLs are the nats:// URLs of every node, with the engine's
// credentials, comma-separated: what an engine gives nats.Connect (or
// jetprop server --nats-url).
func (c *Cluster) EngineURLs() string {
	pw := c.EnginePassword()
	var urls []string
	for _, nd := range c.snapshot() {
		urls = append(urls, fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", natsserver.EngineUser, pw, nd.natsPort))
	}
	return strings.Join(urls, ",")
}

// MQTTURLs are tcp://127.0.0.1:port of every node's MQTT listener.
func (c *Cluster) MQTTURLs() []string {
	var urls []string
	for _, nd := range c.snapshot() {
		urls = append(urls, fmt.Sprintf("tcp://127.0.0.1:%d", nd.mqttPort))
	}
	return urls
}

// EngineMQTTURLs are MQTTURLs with the engine's MQTT credentials in them.
func (c *Cluster) EngineMQTTURLs() []string {
	user, pw := c.any().EngineMQTT()
	var urls []string
	for _, nd := range c.snapshot() {
		urls = append(urls, fmt.Sprintf("tcp://%s:%s@127.0.0.1:%d", user, pw, nd.mqttPort))
	}
	return urls
}

// EnginePassword is the engine's NATS password, the same on every node.
func (c *Cluster) EnginePassword() string { return c.any().EnginePassword() }

// any is a running node (every node derives the same credentials).
func (c *Cluster) any() *natsserver.Server {
	if i := c.find(func(*natsserver.Server) bool { return true }); i >= 0 {
		return c.Node(i)
	}
	c.t.Fatal("natstest: no node runs")
	return nil
}

func (c *Cluster) snapshot() []node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]node, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = *nd
	}
	return out
}

func (c *Cluster) shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}
