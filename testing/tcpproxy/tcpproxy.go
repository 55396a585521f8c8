// Package tcpproxy relays TCP connections from a loopback listener to a
// target, for tests that must cut, refuse, hold or read what passes
// between a client and a server (a broken network, a frozen link, the
// packets on the wire). Every proxy is closed at its test's cleanup.
package tcpproxy

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Relay moves bytes from src to dst until it returns; the proxy then
// closes both, which ends the relay of the other direction too.
type Relay func(dst, src net.Conn)

// Copy relays everything, as it comes.
func Copy(dst, src net.Conn) { _, _ = io.Copy(dst, src) }

// Proxy relays every connection made to it to its target.
type Proxy struct {
	ln       net.Listener
	target   string
	up, down Relay
	wg       sync.WaitGroup

	mu      sync.Mutex
	conns   []net.Conn
	refused bool
}

// Start listens on a loopback port and relays each connection to target
// (host:port): up from the client to the target, down back.
func Start(t testing.TB, target string, up, down Relay) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, up: up, down: down}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's tcp:// URL, as an MQTT client takes it.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.open(c) {
			continue
		}
		t, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, t)
		p.mu.Unlock()
		p.wg.Go(func() { relay(p.up, t, c) })
		p.wg.Go(func() { relay(p.down, c, t) })
	}
}

func relay(r Relay, dst, src net.Conn) {
	defer src.Close()
	defer dst.Close()
	r(dst, src)
}

// open closes c and reports false while the proxy refuses connections.
func (p *Proxy) open(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refused {
		c.Close()
	}
	return !p.refused
}

// Cut closes every relayed connection, without a word to either side, as
// a network failure or a killed process would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// SetDown cuts every connection and refuses new ones, as a broken network
// would, until SetDown(false).
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.refused = down
	p.mu.Unlock()
	if down {
		p.Cut()
	}
}
