package natsserver_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
)

func TestStart_RandomPorts(t *testing.T) {
	dir := t.TempDir()
	s := natstest.StartDir(t, dir)
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(s.MQTTAddr(), ":-1") || strings.HasSuffix(s.MQTTAddr(), ":0") {
		t.Fatalf("client %s, mqtt %s", s.ClientURL(), s.MQTTAddr())
	}
	conn, err := net.DialTimeout("tcp", s.MQTTAddr(), 5*time.Second)
	if err != nil {
		t.Fatalf("mqtt listener: %v", err)
	}
	conn.Close()
	_, js := natstest.Connect(t, s)
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Fatalf("store not under the data dir: %v", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	const secret = "0123456789abcdef0123"
	tests := []struct {
		name    string
		cfg     natsserver.Config
		wantErr string
	}{
		{"no data dir", natsserver.Config{}, "data dir"},
		{"nats port", natsserver.Config{DataDir: "x", NATSPort: 70000}, "nats port"},
		{"mqtt port", natsserver.Config{DataDir: "x", MQTTPort: -2}, "mqtt port"},
		{"cluster without name", natsserver.Config{DataDir: "x", ServerName: "a", Cluster: &natsserver.Cluster{Secret: secret}}, "cluster needs a name"},
		{"cluster node without server name", natsserver.Config{DataDir: "x", Cluster: &natsserver.Cluster{Name: "c", Secret: secret}}, "server name"},
		{"cluster without secret", natsserver.Config{DataDir: "x", ServerName: "a", Cluster: &natsserver.Cluster{Name: "c", Secret: "short"}}, "secret"},
		{"route with credentials", natsserver.Config{DataDir: "x", ServerName: "a", Cluster: &natsserver.Cluster{Name: "c", Secret: secret, Routes: []string{"nats-route://u:p@h:6222"}}}, "no credentials"},
		{"route without port", natsserver.Config{DataDir: "x", ServerName: "a", Cluster: &natsserver.Cluster{Name: "c", Secret: secret, Routes: []string{"h"}}}, "host:port"},
		{"cluster and engine password", natsserver.Config{DataDir: "x", ServerName: "a", EnginePassword: "p", Cluster: &natsserver.Cluster{Name: "c", Secret: secret}}, "derives"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
	cfg := natsserver.Config{DataDir: "x"}
	if err := cfg.Validate(); err != nil || cfg.NATSPort != natsserver.DefaultNATSPort || cfg.MQTTPort != natsserver.DefaultMQTTPort || cfg.Host != natsserver.DefaultHost {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}

// TestStart_PortInUse fails with a clear error instead of exiting the process.
func TestStart_PortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = natsserver.Start(context.Background(), natsserver.Config{
		DataDir: t.TempDir(), NATSPort: port, MQTTPort: -1, Ready: 2 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("err %v, want one naming port %d", err, port)
	}
}
