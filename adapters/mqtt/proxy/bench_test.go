package proxy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/proxy"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/registrytest"
)

// BenchmarkProxy measures delivery of a module from a real registry to a
// Propeller proplet (a paho client on registry/server) through a
// nats-server MQTT listener, in 512000-byte chunks at QoS 1: "cold" pulls
// it first (a fresh proxy, so an empty cache), "warm" finds it cached (the
// registry is still asked what the tag points at).
func BenchmarkProxy(b *testing.B) {
	for _, mib := range []int{1, 10, 50} {
		reg := registrytest.Start(b)
		mod := module(b, mib<<20)
		push(b, reg, "bench/mod:1", mod)
		ns := natstest.Start(b)
		pl := newProplet(b, ns.MQTTURL(), fmt.Sprintf("bench-%d", mib), wire.SuffixChunk)
		req := wire.ModuleRequest{AppName: "bench/mod:1"}
		set := func(c *proxy.Config) { c.ChunkSize = proxy.DefaultChunkSize }
		b.Run(fmt.Sprintf("cold-%dMiB", mib), func(b *testing.B) {
			b.SetBytes(int64(len(mod)))
			for b.Loop() {
				b.StopTimer()
				px := startProxy(b, ns.MQTTURL(), reg, set)
				pl.reset()
				b.StartTimer()
				deliver(b, pl, req)
				b.StopTimer()
				px.Close()
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("warm-%dMiB", mib), func(b *testing.B) {
			startProxy(b, ns.MQTTURL(), reg, set)
			pl.reset()
			deliver(b, pl, req)
			b.SetBytes(int64(len(mod)))
			for b.Loop() {
				pl.reset()
				deliver(b, pl, req)
			}
		})
	}
}

func deliver(b *testing.B, pl *proplet, req wire.ModuleRequest) {
	pl.ask(b, req)
	select {
	case <-pl.done:
	case <-time.After(2 * time.Minute):
		b.Fatal("module not delivered")
	}
}
