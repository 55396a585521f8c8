package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/tlstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// BenchmarkDispatch measures create → start → result recorded for `add` on
// one local proplet over MQTT, at concurrency 1 and 8. It reports tasks/s
// and the p50/p99 latency of one task.
//
//	go test -run '^$' -bench Dispatch -benchtime 2000x ./cmd/jetprop/app/
func BenchmarkDispatch(b *testing.B) {
	for _, conc := range []int{1, 8} {
		b.Run("concurrency="+string(rune('0'+conc)), func(b *testing.B) { benchDispatch(b, testConfig(b.TempDir(), 1), conc) })
	}
}

// BenchmarkDispatchTLS is BenchmarkDispatch with TLS on every listener and
// client certificates required: the engine's publisher and the local
// proplet speak MQTT over TLS (ECDSA P-256, TLS 1.3).
//
//	go test -run '^$' -bench 'Dispatch(TLS)?$' -benchtime 2000x ./cmd/jetprop/app/
func BenchmarkDispatchTLS(b *testing.B) {
	pki := tlstest.New(b)
	for _, conc := range []int{1, 8} {
		b.Run("concurrency="+string(rune('0'+conc)), func(b *testing.B) { benchDispatch(b, tlsConfig(b, pki, 1), conc) })
	}
}

func benchDispatch(b *testing.B, cfg app.Config, conc int) {
	a := startApp(b, cfg)
	waitDevices(b, a, 1)
	svc := a.Service()
	// Store the module once; every task references the same digest.
	spec := addSpec(b, svc, wasmfixtures.Add())
	runTasks(b, conc, func() (time.Duration, error) { return benchAdd(b, svc, spec) })
}

// addSpec stores the add module once and returns a task spec that refers
// to it by digest.
func addSpec(b *testing.B, svc *service.Service, module []byte) events.TaskCreated {
	first, err := svc.CreateTask(context.Background(), events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}}, bytes.NewReader(module))
	if err != nil {
		b.Fatal(err)
	}
	return events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}, Module: first.Module, ModuleSize: first.ModuleSize}
}

// benchAdd creates, starts and waits for one task of spec through svc, and
// returns how long that took.
func benchAdd(b *testing.B, svc *service.Service, spec events.TaskCreated) (time.Duration, error) {
	ctx := context.Background()
	start := time.Now()
	t, err := svc.CreateTask(ctx, spec, nil)
	if err != nil {
		return 0, err
	}
	if _, err := svc.StartTask(ctx, t.ID); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t, err = svc.WaitTask(wctx, t.ID)
	if err == nil && t.State != engine.TaskCompleted {
		b.Errorf("task %s: %s %s", t.ID, t.State, t.Error)
	}
	return time.Since(start), err
}

// BenchmarkDispatchHTTP measures the same through the HTTP API, as a
// client sees it: in dev mode over plain HTTP and MQTT, and secured (--auth
// on with an API token, a provisioned proplet, TLS on every listener and
// client certificates required), in the same run.
//
//	go test -run '^$' -bench DispatchHTTP -benchtime 2000x ./cmd/jetprop/app/
func BenchmarkDispatchHTTP(b *testing.B) {
	pki := tlstest.New(b)
	for _, conc := range []int{1, 8} {
		b.Run("open/concurrency="+string(rune('0'+conc)), func(b *testing.B) {
			benchDispatchHTTP(b, testConfig(b.TempDir(), 1), conc, func(a *app.App) *client.Client { return client.New(a.HTTPURL(), nil) })
		})
		b.Run("secure/concurrency="+string(rune('0'+conc)), func(b *testing.B) {
			cfg := tlsConfig(b, pki, 1)
			cfg.Auth = true
			benchDispatchHTTP(b, cfg, conc, func(a *app.App) *client.Client {
				token, err := os.ReadFile(app.AdminTokenPath(cfg.DataDir))
				if err != nil {
					b.Fatal(err)
				}
				pool := x509.NewCertPool()
				ca, _ := os.ReadFile(pki.CA)
				pool.AppendCertsFromPEM(ca)
				return client.NewTLS(a.HTTPURL(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, client.WithToken(strings.TrimSpace(string(token))))
			})
		})
	}
}

func benchDispatchHTTP(b *testing.B, cfg app.Config, conc int, newClient func(*app.App) *client.Client) {
	a := startApp(b, cfg)
	waitDevices(b, a, 1)
	c := newClient(a)
	ctx := context.Background()
	first, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	if err != nil {
		b.Fatal(err)
	}
	req := httpapi.TaskRequest{Name: "add", ImageURL: first.Module, Inputs: wire.Strings{"1", "2"}}
	runTasks(b, conc, func() (time.Duration, error) {
		start := time.Now()
		t, err := c.CreateTask(ctx, req)
		if err != nil {
			return 0, err
		}
		if _, err := c.StartTask(ctx, t.ID); err != nil {
			return 0, err
		}
		r, err := c.Results(ctx, t.ID, 30*time.Second)
		if err == nil && string(r.Results) != `"3"` {
			b.Errorf("task %s: %s", t.ID, r.Results)
		}
		return time.Since(start), err
	})
}

// runTasks runs b.N tasks with one, conc at a time, and reports tasks/s
// and the p50/p99 latency of one task.
func runTasks(b *testing.B, conc int, one func() (time.Duration, error)) {
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	begin := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				d, err := one()
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
