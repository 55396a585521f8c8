package proplet_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/workers/proplet"
)

func validConfig() proplet.Config {
	return proplet.Config{Tenant: "t", Channel: "c", DataDir: "/tmp/x"}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*proplet.Config)
		wantErr []string // substrings, all required
	}{
		{name: "minimal", edit: func(*proplet.Config) {}},
		{name: "all schemes", edit: func(c *proplet.Config) { c.MQTTAddress = "mqtts://broker:8883" }},
		{name: "no tenant or channel", edit: func(c *proplet.Config) { c.Tenant, c.Channel = "", "" },
			wantErr: []string{"tenant id is empty (-tenant or PROPLET_TENANT_ID)", "channel id is empty (-channel or PROPLET_CHANNEL_ID)"}},
		{name: "tenant with slash", edit: func(c *proplet.Config) { c.Tenant = "a/b" }, wantErr: []string{`tenant id "a/b"`}},
		{name: "bad address", edit: func(c *proplet.Config) { c.MQTTAddress = "localhost:1883" }, wantErr: []string{"PROPLET_MQTT_ADDRESS"}},
		{name: "bad qos", edit: func(c *proplet.Config) { c.QoS = 3 }, wantErr: []string{"qos 3"}},
		{name: "negative liveliness", edit: func(c *proplet.Config) { c.Liveliness = -time.Second }, wantErr: []string{"PROPLET_LIVELINESS_INTERVAL"}},
		{name: "memory too big", edit: func(c *proplet.Config) { c.DefaultMemoryMiB = 5000 }, wantErr: []string{"memory limit 5000 MiB: want 1..4096"}},
		{name: "log level", edit: func(c *proplet.Config) { c.LogLevel = "loud" }, wantErr: []string{`log level "loud"`}},
		{name: "entity id not a topic level", edit: func(c *proplet.Config) { c.EntityID = "a/b" }, wantErr: []string{`entity id "a/b"`, "PROPLET_ENTITY_ID"}},
		{name: "negative module limits", edit: func(c *proplet.Config) {
			c.ModuleCacheMiB, c.ChunkTimeout, c.ChunkRetries = -1, -time.Second, -1
		}, wantErr: []string{"PROPLET_MODULE_CACHE_MIB", "PROPLET_CHUNK_TIMEOUT", "PROPLET_CHUNK_RETRIES"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestConfig_ValidateDefaults(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MQTTAddress != proplet.DefaultMQTTAddress || c.Liveliness != 10*time.Second ||
		c.DefaultTimeout != time.Minute || c.DefaultMemoryMiB != 256 || c.LogLevel != "info" ||
		c.MaxModuleMiB != 100 || c.ModuleCacheMiB != 1024 || c.ChunkTimeout != 3*time.Second || c.ChunkRetries != 5 {
		t.Fatalf("defaults not filled: %+v", c)
	}
}

func TestConfig_RegisterFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(proplet.Config) bool
		wantErr string
	}{
		{name: "propeller defaults", check: func(c proplet.Config) bool {
			return c.MQTTAddress == "tcp://localhost:1883" && c.QoS == 2 && c.Liveliness == 10*time.Second &&
				c.DefaultTimeout == time.Minute && c.DefaultMemoryMiB == 256
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
			"PROPLET_DOMAIN_ID": "dom", "PROPLET_CLIENT_ID": "cid", "PROPLET_CLIENT_KEY": "ckey",
		}, check: func(c proplet.Config) bool { return c.Tenant == "dom" && c.EntityID == "cid" && c.APIKey == "ckey" }},
		{name: "flags win", env: map[string]string{"PROPLET_MQTT_QOS": "1", "PROPLET_LIVELINESS_INTERVAL": "5", "PROPLET_CHUNK_TIMEOUT": "9"},
			args: []string{"-qos", "0", "-liveliness", "250ms", "-tenant", "x", "-chunk-timeout", "2s", "-module-cache-mib", "64"},
			check: func(c proplet.Config) bool {
				return c.QoS == 0 && c.Liveliness == 250*time.Millisecond && c.Tenant == "x" &&
					c.ChunkTimeout == 2*time.Second && c.ModuleCacheMiB == 64
			}},
		{name: "bad env reported by Validate", env: map[string]string{"PROPLET_MQTT_QOS": "7", "PROPLET_TASK_TIMEOUT": "soon"},
			wantErr: "PROPLET_MQTT_QOS=7: want 0, 1 or 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var c proplet.Config
			fs := flag.NewFlagSet("proplet", flag.ContinueOnError)
			c.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" {
				c.Tenant, c.Channel = "t", "c"
				if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if !tc.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestConfig_FlagsNameTheirEnv(t *testing.T) {
	var c proplet.Config
	fs := flag.NewFlagSet("proplet", flag.ContinueOnError)
	c.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "(env PROPLET_") {
			t.Errorf("-%s does not name its env var: %q", f.Name, f.Usage)
		}
	})
}
