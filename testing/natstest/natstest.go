// Package natstest starts a real embedded nats-server (JetStream and MQTT on
// random loopback ports, a temp store dir) for one test and cleans it up.
// StartCluster starts several as one cluster, with a way to stop and
// restart a node and to find the meta leader and a stream's leader.
package natstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/natsserver"
)

// Start runs a server on random ports with its store in a temp dir.
func Start(t testing.TB) *natsserver.Server {
	t.Helper()
	return StartDir(t, t.TempDir())
}

// StartDir runs a server on random ports with its store under dir, so a
// test can stop it and start another on the same data.
func StartDir(t testing.TB, dir string) *natsserver.Server {
	t.Helper()
	s, err := natsserver.Start(context.Background(), natsserver.Config{
		DataDir:   dir,
		NATSPort:  -1,
		MQTTPort:  -1,
		MaxStore:  1 << 30,
		MaxMemory: 64 << 20,
		Ready:     15 * time.Second,
		Authorize: OpenDevices,
	})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// OpenDevices admits every client that is not the engine into the
// devices' account with all of the device topics (m.>), over MQTT or NATS:
// tests that play a Propeller manager or a device need no credentials.
// Tests of the real admission policy give the app's own authorizer.
var OpenDevices = natsserver.AuthorizerFunc(func(_ context.Context, c natsserver.Client) (natsserver.Grant, error) {
	return natsserver.Grant{Name: "test:" + c.ClientID, Pub: []string{"m.>"}, Sub: []string{"m.>"}}, nil
})

// Connect opens an in-process connection and a JetStream context, closed at cleanup.
func Connect(t testing.TB, s *natsserver.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// CheckFor polls fn until it returns nil or timeout passes, then fails with
// fn's last error.
func CheckFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// DisableJetStream turns JetStream off for the engine's account, as a
// store that is off looks to a client: publishes to streams get no
// responders, API requests the answer that JetStream is not enabled
// (10039). The returned enable turns it on again on the same store
// (streams and messages as they were, recovered from disk), with the
// limits natsserver gives it at start; it runs at cleanup if the
// test did not call it, so the test's clients stop without waiting on a
// JetStream that is gone. enable is safe to call more than once.
//
// It works on the account, not the server: nats-server's own
// server.Server.EnableJetStream, turned on again under live clients, replaces
// its API queues while client connections read them, a data race the
// race detector reports (1 run in ~700 here, and a CI run). An account's
// JetStream is turned on and off at run time by design (account updates).
func DisableJetStream(t testing.TB, s *natsserver.Server) (enable func() error) {
	t.Helper()
	acc, err := s.NATS().LookupAccount(natsserver.EngineAccount)
	if err != nil {
		t.Fatalf("DisableJetStream: %v", err)
	}
	if !acc.JetStreamEnabled() {
		t.Fatal("DisableJetStream: JetStream is not enabled")
	}
	if err := acc.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	enable = func() error {
		mu.Lock()
		defer mu.Unlock()
		return s.EnableJetStream()
	}
	t.Cleanup(func() {
		if err := enable(); err != nil {
			t.Errorf("enable JetStream again: %v", err)
		}
	})
	return enable
}
