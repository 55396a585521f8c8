package propletcmd_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/internal/envflag"
	"github.com/jetprop/jetprop/cmd/internal/propletcmd"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/workers/proplet"
)

// lookup reads vars, not the process environment.
func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// parse declares the flags with the environment vars and parses args.
func parse(t *testing.T, vars map[string]string, args ...string) (proplet.Config, *envflag.Set) {
	t.Helper()
	var c proplet.Config
	fs := flag.NewFlagSet("proplet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	set := envflag.New(fs, lookup(vars))
	propletcmd.Flags(set, &c)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c, set
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(proplet.Config) bool
		wantErr string
	}{
		{name: "propeller defaults", check: func(c proplet.Config) bool {
			return c.MQTTAddress == "tcp://localhost:1883" && c.QoS == 2 && c.HeartbeatQoS == 0 && c.Liveliness == 10*time.Second &&
				c.DefaultTimeout == time.Minute && c.DefaultMemoryMiB == 256 && c.DataDir == proplet.DefaultDataDir() &&
				c.ModuleCacheMiB == 1024 && c.ChunkTimeout == 3*time.Second && c.ChunkRetries == 5 && c.MaxModuleMiB == 100
		}},
		{name: "env", env: map[string]string{
			"PROPLET_MQTT_ADDRESS": "tcp://b:1", "PROPLET_TENANT_ID": "ten", "PROPLET_CHANNEL_ID": "ch",
			"PROPLET_ENTITY_ID": "id1", "PROPLET_API_KEY": "key", "PROPLET_MQTT_QOS": "1",
			"PROPLET_LIVELINESS_INTERVAL": "5", "PROPLET_EXTERNAL_WASM_RUNTIME": "/bin/wasmtime",
			"PROPLET_NAMESPACE": "ns", "PROPLET_LOG_LEVEL": "debug", "PROPLET_DATA_DIR": "/d",
			"PROPLET_TASK_TIMEOUT": "90s", "PROPLET_MEMORY_LIMIT_MIB": "64",
			"PROPLET_MODULE_CACHE_MIB": "512", "PROPLET_CHUNK_TIMEOUT": "1.5", "PROPLET_CHUNK_RETRIES": "7", "PROPLET_MAX_MODULE_MIB": "200",
		}, check: func(c proplet.Config) bool {
			return c.MQTTAddress == "tcp://b:1" && c.Tenant == "ten" && c.Channel == "ch" && c.EntityID == "id1" &&
				c.APIKey == "key" && c.QoS == 1 && c.Liveliness == 5*time.Second && c.ExternalRuntime == "/bin/wasmtime" &&
				c.Namespace == "ns" && c.LogLevel == "debug" && c.DataDir == "/d" && c.DefaultTimeout == 90*time.Second &&
				c.DefaultMemoryMiB == 64 && c.ModuleCacheMiB == 512 && c.ChunkTimeout == 1500*time.Millisecond &&
				c.ChunkRetries == 7 && c.MaxModuleMiB == 200
		}},
		{name: "older propeller names", env: map[string]string{
			"PROPLET_DOMAIN_ID": "dom", "PROPLET_CLIENT_ID": "cid", "PROPLET_CLIENT_KEY": "ckey", "PROPLET_MANAGER_K8S_NAMESPACE": "k8s",
		}, check: func(c proplet.Config) bool {
			return c.Tenant == "dom" && c.EntityID == "cid" && c.APIKey == "ckey" && c.Namespace == "k8s"
		}},
		{name: "current name before the older one", env: map[string]string{"PROPLET_TENANT_ID": "new", "PROPLET_DOMAIN_ID": "old"},
			check: func(c proplet.Config) bool { return c.Tenant == "new" }},
		{name: "empty variable is unset", env: map[string]string{"PROPLET_TENANT_ID": "", "PROPLET_DOMAIN_ID": "old", "PROPLET_MQTT_QOS": ""},
			check: func(c proplet.Config) bool { return c.Tenant == "old" && c.QoS == 2 }},
		{name: "flags win", env: map[string]string{"PROPLET_MQTT_QOS": "1", "PROPLET_LIVELINESS_INTERVAL": "5", "PROPLET_CHUNK_TIMEOUT": "9"},
			args: []string{"--mqtt-qos", "0", "-liveliness", "250ms", "--tenant", "x", "-chunk-timeout", "2s", "--module-cache-mib", "64"},
			check: func(c proplet.Config) bool {
				return c.QoS == 0 && c.Liveliness == 250*time.Millisecond && c.Tenant == "x" &&
					c.ChunkTimeout == 2*time.Second && c.ModuleCacheMiB == 64
			}},
		{name: "deprecated spellings", args: []string{"-data-dir", "/old", "-qos", "1", "-mqtt-address", "tcp://old:1"},
			check: func(c proplet.Config) bool {
				return c.DataDir == "/old" && c.QoS == 1 && c.MQTTAddress == "tcp://old:1"
			}},
		{name: "heartbeat qos", env: map[string]string{"PROPLET_HEARTBEAT_QOS": "2"}, args: []string{"--mqtt-qos", "0"},
			check: func(c proplet.Config) bool { return c.HeartbeatQoS == 2 && c.QoS == 0 }},
		{name: "bad heartbeat qos", env: map[string]string{"PROPLET_HEARTBEAT_QOS": "3"}, wantErr: `env PROPLET_HEARTBEAT_QOS="3": want 0, 1 or 2`},
		{name: "bad env reported", env: map[string]string{"PROPLET_MQTT_QOS": "7", "PROPLET_TASK_TIMEOUT": "soon"},
			wantErr: `env PROPLET_MQTT_QOS="7": want 0, 1 or 2`},
		{name: "every bad env reported", env: map[string]string{"PROPLET_MEMORY_LIMIT_MIB": "lots", "PROPLET_TASK_TIMEOUT": "soon"},
			wantErr: `env PROPLET_TASK_TIMEOUT="soon": want seconds or a duration like 10s`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, set := parse(t, tc.env, tc.args...)
			if tc.wantErr != "" {
				if err := set.Err(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err := set.Err(); err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

// TestFlags_NameTheirEnv: every flag reads a PROPLET_* variable, and the
// help says which.
func TestFlags_NameTheirEnv(t *testing.T) {
	_, set := parse(t, nil)
	var help bytes.Buffer
	set.PrintDefaults(&help)
	set.FlagSet().VisitAll(func(f *flag.Flag) {
		env := set.Env(f.Name)
		if len(env) == 0 || !strings.HasPrefix(env[0], "PROPLET_") {
			t.Errorf("--%s reads %q", f.Name, env)
		}
		if !strings.Contains(help.String(), "env "+strings.Join(env, " or ")) {
			t.Errorf("help does not name %q:\n%s", env, help.String())
		}
	})
}

func TestMain_Help(t *testing.T) {
	var out bytes.Buffer
	if err := propletcmd.Main(context.Background(), []string{"-h"}, &out, lookup(nil)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Usage: proplet", "PROPLET_MQTT_ADDRESS", "PROPLET_MEMORY_LIMIT_MIB", "control/manager/start",
		"--data directory", "env PROPLET_DATA_DIR", "env PROPLET_TENANT_ID or PROPLET_DOMAIN_ID", "--data-dir (now --data)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMain_Errors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{name: "bad config", args: []string{"-tenant", "", "-channel", "c"}, wantErr: "tenant id is empty (--tenant or PROPLET_TENANT_ID)"},
		{name: "bad env and bad config", env: map[string]string{"PROPLET_MQTT_QOS": "x"}, args: []string{"--channel", "c"},
			wantErr: "env PROPLET_MQTT_QOS=\"x\": want 0, 1 or 2\nproplet: invalid config:\nwire: tenant id is empty"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"-tenant", "t", "-channel", "c", "extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := propletcmd.Main(context.Background(), tc.args, &bytes.Buffer{}, lookup(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestMain_RunsUntilCancelled starts the command against a real broker and
// stops it with its context, as a signal would.
func TestMain_RunsUntilCancelled(t *testing.T) {
	s := natstest.Start(t)
	nc, _ := natstest.Connect(t, s)
	discovery, err := nc.SubscribeSync("m.t1.c.c1.control.proplet.*.create") // MQTT m/t1/c/c1/control/proplet/<id>/create, the proplet's own topic
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	args := []string{"--mqtt-url", s.MQTTURL(), "--tenant", "t1", "--channel", "c1",
		"--data", t.TempDir(), "--mqtt-qos", "1", "--log-level", "warn"}
	go func() { done <- propletcmd.Main(ctx, args, &logs, lookup(nil)) }()
	if _, err := discovery.NextMsg(15 * time.Second); err != nil {
		cancel()
		t.Fatalf("no discovery: %v (%v)", err, errors.Join(<-done))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
