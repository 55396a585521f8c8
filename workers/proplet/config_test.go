package proplet_test

import (
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
			wantErr: []string{"tenant id is empty (--tenant or PROPLET_TENANT_ID)", "channel id is empty (--channel or PROPLET_CHANNEL_ID)"}},
		{name: "tenant with slash", edit: func(c *proplet.Config) { c.Tenant = "a/b" }, wantErr: []string{`tenant id "a/b"`}},
		{name: "bad address", edit: func(c *proplet.Config) { c.MQTTAddress = "localhost:1883" }, wantErr: []string{"PROPLET_MQTT_ADDRESS"}},
		{name: "failover list", edit: func(c *proplet.Config) { c.MQTTAddress = "tcp://n1:1883, tcp://n2,tcp://n3:1884" }},
		{name: "list with a bad address", edit: func(c *proplet.Config) { c.MQTTAddress = "tcp://n1:1883,n2:1883" },
			wantErr: []string{`broker address "n2:1883"`, "PROPLET_MQTT_ADDRESS"}},
		{name: "list mixing tls and plain", edit: func(c *proplet.Config) { c.MQTTAddress = "tls://n1,tcp://n2" }, wantErr: []string{"all TLS"}},
		{name: "empty list", edit: func(c *proplet.Config) { c.MQTTAddress = " , " }, wantErr: []string{"no broker address"}},
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
