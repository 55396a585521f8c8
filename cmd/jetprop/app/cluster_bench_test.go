package app_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// BenchmarkDispatchCluster measures create → start → result recorded for
// `add` at concurrency 8 with two in-process proplets, on one nats-server
// and on a 3-node cluster (streams R3), with one and two engine replicas
// (tasks created through each replica in turn).
//
//	go test -run '^$' -bench DispatchCluster -benchtime 2000x ./cmd/jetprop/app/
func BenchmarkDispatchCluster(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, engines := range []int{1, 2} {
			b.Run(fmt.Sprintf("nodes=%d/engines=%d", nodes, engines), func(b *testing.B) { benchDispatchCluster(b, nodes, engines, 8) })
		}
	}
}

func benchDispatchCluster(b *testing.B, nodes, engines, conc int) {
	var natsURL, engineMQTT, mqttURL string
	replicas := 1
	if nodes == 1 {
		ns := natstest.Start(b)
		natsURL, engineMQTT, mqttURL = ns.EngineURL(), ns.EngineMQTTURL(), ns.MQTTURL()
	} else {
		c := natstest.StartCluster(b, nodes)
		natsURL, engineMQTT, mqttURL = c.EngineURLs(), strings.Join(c.EngineMQTTURLs(), ","), c.MQTTURLs()[0]
		replicas = 3
	}
	var apps []*app.App
	for range engines {
		cfg := testConfig(b.TempDir(), 0)
		cfg.NATSURL, cfg.MQTTURL, cfg.Replicas = natsURL, engineMQTT, replicas
		apps = append(apps, startApp(b, cfg))
	}
	for range 2 {
		startProplet(b, mqttURL, "t1", "c1", b.TempDir())
	}
	for _, a := range apps {
		waitDevices(b, a, 2)
	}
	spec := addSpec(b, apps[0].Service(), wasmfixtures.Add())
	var turn atomic.Int64
	runTasks(b, conc, func() (time.Duration, error) {
		return benchAdd(b, apps[turn.Add(1)%int64(len(apps))].Service(), spec)
	})
}
