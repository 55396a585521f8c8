package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/proxy"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/registrytest"
)

const (
	tenant  = "dom"
	channel = "chan"
	wait    = 15 * time.Second
)

var topics = wire.Topics{Tenant: tenant, Channel: channel}

// module is a valid wasm module of about n bytes: the header and a custom
// section of random bytes, so every call gives different bytes.
func module(t testing.TB, n int) []byte {
	t.Helper()
	payload := make([]byte, n)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	section := append([]byte{3, 'p', 'a', 'd'}, payload...)
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0}
	for v := uint64(len(section)); ; {
		b := byte(v & 0x7f)
		if v >>= 7; v != 0 {
			out = append(out, b|0x80)
			continue
		}
		out = append(out, b)
		break
	}
	return append(out, section...)
}

func digestOf(b []byte) string {
	return domain.DigestOf(b)
}

// push stores b in the registry as ref (with the registry's credentials)
// and returns the manifest digest.
func push(t testing.TB, reg *registrytest.Registry, path string, b []byte, extra ...oci.Option) string {
	t.Helper()
	opts := append([]oci.Option{oci.WithPlainHTTP(true)}, extra...)
	if reg.Username != "" {
		opts = append(opts, oci.WithBasicAuth(reg.Username, reg.Password))
	}
	c, err := oci.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Push(context.Background(), reg.Ref(path), bytes.NewReader(b), int64(len(b)), digestOf(b))
	if err != nil {
		t.Fatalf("push %s: %v", path, err)
	}
	return m
}

// startProxy runs a proxy against the broker and registry; set adjusts the
// config.
func startProxy(t testing.TB, brokerURL string, reg *registrytest.Registry, set func(*proxy.Config)) *proxy.Proxy {
	t.Helper()
	cfg := proxy.Config{
		RegistryURL: reg.Host, PlainHTTP: true, ChunkSize: 100_000,
		MQTTAddress: brokerURL, DomainID: tenant, ChannelID: channel, Timeout: wait,
	}
	if set != nil {
		set(&cfg)
	}
	p, err := proxy.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// proplet is a Propeller-protocol proplet as a plain paho client: it asks
// on registry/proplet and assembles chunks by app_name from the topics it
// subscribed to.
type proplet struct {
	c paho.Client

	mu     sync.Mutex
	chunks map[string]map[int][]byte // app_name -> index -> data
	totals map[string]int
	errs   map[string][]string
	sizes  []int         // payload sizes of the data chunks
	done   chan struct{} // a module was completed
}

func newProplet(t testing.TB, brokerURL, id string, suffixes ...string) *proplet {
	t.Helper()
	p := &proplet{chunks: map[string]map[int][]byte{}, totals: map[string]int{}, errs: map[string][]string{}, done: make(chan struct{}, 1)}
	p.c = paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(id).SetCleanSession(true))
	if tok := p.c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { p.c.Disconnect(50) })
	for _, s := range suffixes {
		if tok := p.c.Subscribe(topics.Topic(s), 1, p.onChunk(t)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", s, tok.Error())
		}
	}
	return p
}

func (p *proplet) onChunk(t testing.TB) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		ch, err := wire.DecodeChunk(m.Payload())
		if err != nil {
			t.Errorf("decode chunk on %s: %v", m.Topic(), err)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if ch.Error != "" {
			p.errs[ch.AppName] = append(p.errs[ch.AppName], ch.Error)
			return
		}
		if p.chunks[ch.AppName] == nil {
			p.chunks[ch.AppName] = map[int][]byte{}
		}
		p.chunks[ch.AppName][int(ch.ChunkIdx)] = ch.Data
		p.totals[ch.AppName] = int(ch.TotalChunks)
		p.sizes = append(p.sizes, len(m.Payload()))
		if len(p.chunks[ch.AppName]) == int(ch.TotalChunks) {
			select {
			case p.done <- struct{}{}:
			default:
			}
		}
	}
}

// reset forgets what arrived.
func (p *proplet) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.chunks)
	clear(p.totals)
	p.sizes = nil
}

// ask publishes a registry request the way a proplet does.
func (p *proplet) ask(t testing.TB, req wire.ModuleRequest) {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if tok := p.c.Publish(topics.Topic(wire.SuffixModuleRequest), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish request: %v", tok.Error())
	}
}

// module returns the assembled module of app once every chunk is in.
func (p *proplet) module(app string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total, got := p.totals[app], p.chunks[app]
	if total == 0 || len(got) != total {
		return nil, fmt.Errorf("%s: %d of %d chunks", app, len(got), total)
	}
	var out []byte
	for i := range total {
		out = append(out, got[i]...)
	}
	return out, nil
}

// fetch asks for app and waits for the whole module.
func (p *proplet) fetch(t testing.TB, req wire.ModuleRequest) []byte {
	t.Helper()
	p.ask(t, req)
	var b []byte
	natstest.CheckFor(t, wait, func() (err error) { b, err = p.module(req.AppName); return err })
	return b
}

// failure waits for an error chunk about app.
func (p *proplet) failure(t testing.TB, app string) string {
	t.Helper()
	var msg string
	natstest.CheckFor(t, wait, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.errs[app]) == 0 {
			return fmt.Errorf("no error chunk for %s", app)
		}
		msg = p.errs[app][0]
		return nil
	})
	return msg
}

func (p *proplet) failures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.errs)
}

func (p *proplet) dataChunks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sizes)
}

func TestProxy_HonoursTagAndDigest(t *testing.T) {
	reg := registrytest.Start(t)
	v1, v2 := module(t, 250_000), module(t, 40_000)
	m1 := push(t, reg, "demo/add:v1", v1)
	push(t, reg, "demo/add:v2", v2)
	ns := natstest.Start(t)
	px := startProxy(t, ns.MQTTURL(), reg, nil)
	pl := newProplet(t, ns.MQTTURL(), "propeller-proplet", wire.SuffixChunk)

	tests := []struct {
		name, app string
		want      []byte
	}{
		{"relative name, tag v1", "demo/add:v1", v1},
		{"relative name, tag v2", "demo/add:v2", v2},
		{"full reference", reg.Ref("demo/add:v1"), v1},
		{"by manifest digest", "demo/add@" + m1, v1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pl.fetch(t, wire.ModuleRequest{AppName: tc.app}); !bytes.Equal(got, tc.want) {
				t.Fatalf("assembled %d bytes (%s), want %d (%s)", len(got), digestOf(got), len(tc.want), digestOf(tc.want))
			}
		})
	}
	pl.mu.Lock()
	if n := pl.totals["demo/add:v1"]; n != 3 {
		t.Errorf("v1 came in %d chunks, want 3 of 100000 bytes", n)
	}
	pl.mu.Unlock()
	natstest.CheckFor(t, wait, func() error {
		s := px.Stats()
		if s.Requests != 4 || s.Delivered != 4 || s.Failed != 0 || s.Pulls != 2 || s.CacheHits != 2 || s.Chunks != 3+1+3+3 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}

func TestProxy_ReportsFailures(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("jet", "prop"))
	mod := module(t, 10_000)
	push(t, reg, "demo/add:v1", mod)
	ns := natstest.Start(t)
	closed := closedPort(t)

	tests := []struct {
		name string
		set  func(*proxy.Config)
		app  string
		want []string // in the error chunk
	}{
		{"unknown tag", auth("jet", "prop"), "demo/add:v9", []string{`tag "v9" not found`, "v1"}},
		{"unknown repository", auth("jet", "prop"), "demo/nope:v1", []string{"not found"}},
		{"wrong password", auth("jet", "wrong"), "demo/add:v1", []string{"rejected the credentials", "401"}},
		{"no credentials", nil, "demo/add:v1", []string{"requires authentication"}},
		{"unreachable registry", func(c *proxy.Config) { c.RegistryURL = closed }, "demo/add:v1", []string{"unreachable"}},
		{"no registry for a relative name", func(c *proxy.Config) { c.RegistryURL = "" }, "demo/add:v1", []string{"names no registry"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			px := startProxy(t, ns.MQTTURL(), reg, tc.set)
			id := fmt.Sprintf("p%d", i)
			mine := newProplet(t, ns.MQTTURL(), id, wire.PropletChunkTopic(id))
			shared := newProplet(t, ns.MQTTURL(), id+"-shared", wire.SuffixChunk)
			mine.ask(t, wire.ModuleRequest{AppName: tc.app, PropletID: id})
			msg := mine.failure(t, tc.app)
			t.Logf("error chunk: %s", msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error chunk %q does not say %q", msg, w)
				}
			}
			natstest.CheckFor(t, wait, func() error {
				if s := px.Stats(); s.Failed != 1 || s.Delivered != 0 || s.Chunks != 0 {
					return fmt.Errorf("stats %+v", s)
				}
				return nil
			})
			if n, m, e := mine.dataChunks(), shared.dataChunks(), shared.failures(); n+m+e != 0 {
				t.Fatalf("%d data chunks to the proplet, %d data and %d error chunks on the shared topic", n, m, e)
			}
		})
	}

	t.Run("right credentials, to the proplet alone", func(t *testing.T) {
		startProxy(t, ns.MQTTURL(), reg, auth("jet", "prop"))
		mine := newProplet(t, ns.MQTTURL(), "pok", wire.PropletChunkTopic("pok"))
		shared := newProplet(t, ns.MQTTURL(), "pok-shared", wire.SuffixChunk)
		if got := mine.fetch(t, wire.ModuleRequest{AppName: "demo/add:v1", PropletID: "pok"}); !bytes.Equal(got, mod) {
			t.Fatalf("assembled %s, want %s", digestOf(got), digestOf(mod))
		}
		if n := shared.dataChunks(); n != 0 {
			t.Fatalf("%d chunks on the shared topic", n)
		}
	})
}

func TestProxy_TokenAuth(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithTokenAuth())
	mod := module(t, 5_000)
	push(t, reg, "demo/add:v1", mod, oci.WithBearerToken(reg.Token(t, "demo/add", "pull", "push")))
	ns := natstest.Start(t)
	token := func(tok string) func(*proxy.Config) {
		return func(c *proxy.Config) { c.Authenticate, c.Token = true, tok }
	}
	good := startProxy(t, ns.MQTTURL(), reg, token(reg.Token(t, "demo/add", "pull")))
	pl := newProplet(t, ns.MQTTURL(), "tok", wire.PropletChunkTopic("tok"))
	if got := pl.fetch(t, wire.ModuleRequest{AppName: "demo/add:v1", PropletID: "tok"}); !bytes.Equal(got, mod) {
		t.Fatalf("assembled %s, want %s", digestOf(got), digestOf(mod))
	}
	good.Close() // the next proxy alone answers

	startProxy(t, ns.MQTTURL(), reg, token(reg.Token(t, "other/repo", "pull")))
	other := newProplet(t, ns.MQTTURL(), "tok2", wire.PropletChunkTopic("tok2"))
	other.ask(t, wire.ModuleRequest{AppName: "demo/add:v1", PropletID: "tok2"})
	if msg := other.failure(t, "demo/add:v1"); !strings.Contains(msg, "401") {
		t.Fatalf("error chunk %q", msg)
	}
}

func auth(user, pass string) func(*proxy.Config) {
	return func(c *proxy.Config) { c.Authenticate, c.Username, c.Password = true, user, pass }
}

// closedPort is a loopback address nobody listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestProxy_ChunksFitTheBrokerPayload(t *testing.T) {
	reg := registrytest.Start(t)
	mod := module(t, 300_000)
	push(t, reg, "demo/big:1", mod)
	ns := natstest.Start(t)
	const maxPayload = 64 << 10
	px := startProxy(t, ns.MQTTURL(), reg, func(c *proxy.Config) { c.ChunkSize, c.MaxPayload = 512_000, maxPayload })
	if n := px.ChunkSize(); n > (maxPayload-4096)/4*3 || n < 32<<10 {
		t.Fatalf("chunk size %d for a %d-byte payload limit", n, maxPayload)
	}
	pl := newProplet(t, ns.MQTTURL(), "small-broker", wire.SuffixChunk)
	if got := pl.fetch(t, wire.ModuleRequest{AppName: "demo/big:1"}); !bytes.Equal(got, mod) {
		t.Fatalf("assembled %s, want %s", digestOf(got), digestOf(mod))
	}
	for _, n := range pl.sizes {
		if n > maxPayload {
			t.Fatalf("a chunk message of %d bytes, over the %d limit", n, maxPayload)
		}
	}
}

func TestProxy_DropsMalformedRequests(t *testing.T) {
	reg := registrytest.Start(t)
	ns := natstest.Start(t)
	px := startProxy(t, ns.MQTTURL(), reg, nil)
	pl := newProplet(t, ns.MQTTURL(), "garbage", wire.SuffixChunk)
	for _, body := range []string{`not json`, `{"app_name": ""}`, `{"chunks": [1]}`} {
		if tok := pl.c.Publish(topics.Topic(wire.SuffixModuleRequest), 1, false, []byte(body)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	natstest.CheckFor(t, wait, func() error {
		if s := px.Stats(); s.Malformed != 3 || s.Requests != 0 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}

func TestStart_Errors(t *testing.T) {
	ns := natstest.Start(t)
	closed := closedPort(t)
	base := proxy.Config{MQTTAddress: ns.MQTTURL(), DomainID: tenant, ChannelID: channel, Timeout: 5 * time.Second}
	tests := []struct {
		name string
		set  func(*proxy.Config)
		want string
	}{
		{"no domain", func(c *proxy.Config) { c.DomainID = "" }, "tenant id is empty"},
		{"bad registry URL", func(c *proxy.Config) { c.RegistryURL = "ftp://x" }, "registry URL"},
		{"authenticate without credentials", func(c *proxy.Config) { c.RegistryURL, c.Authenticate = "r:5000", true }, "username and password, or a token"},
		{"QoS 3", func(c *proxy.Config) { c.QoS = 3 }, "QoS 3"},
		{"no broker", func(c *proxy.Config) { c.MQTTAddress = "tcp://" + closed }, "mqtt: connect to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.set(&cfg)
			p, err := proxy.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				p.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}
