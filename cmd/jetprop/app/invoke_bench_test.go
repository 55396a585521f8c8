package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// BenchmarkInvoke measures invocations end to end: HTTP API → engine →
// MQTT → a real proplet (in process, over the embedded broker) → the
// answer back on core NATS → the HTTP answer. It reports p50/p99 latency,
// invokes/s and CPU per invoke (the whole process: server, broker and
// proplet) at concurrency 1 and 8, and the first-invoke latency of a newly
// created module (create, start, first answer): 1 KiB, 1 MiB padded (a
// custom section the runtime skips) and 1 MiB of code (about 3,700
// functions the runtime validates and compiles: wasmfixtures.Functions).
// The proplet answers a first invoke from wazero's interpreter and
// compiles the module in the background (its tiered start); each
// first-invoke run waits for that compile to end before the next starts,
// as a module pushed on a quiet proplet would find it.
//
//	make invoke-bench
//
//	go test -run '^$' -bench Invoke -benchtime 4000x ./cmd/jetprop/app/
func BenchmarkInvoke(b *testing.B) {
	a := startApp(b, testConfig(b.TempDir(), 1))
	waitDevices(b, a, 1)
	id := deployLatent(b, a, "add", wasmfixtures.Add())
	invokeWhenDeployed(b, a, id, map[string]any{"inputs": []string{"2", "3"}})
	body, _ := json.Marshal(map[string]any{"inputs": []string{"2", "3"}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := a.HTTPURL() + "/tasks/" + id + "/invoke"
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("warm/concurrency=%d", conc), func(b *testing.B) {
			benchWarm(b, client, url, body, conc)
		})
	}
	firsts := []struct {
		name   string
		module func() []byte
	}{
		{"first/module=1KiB", func() []byte { return wasmfixtures.Padded(wasmfixtures.Add(), 1<<10) }},
		{"first/module=1024KiB-padded", func() []byte { return wasmfixtures.Padded(wasmfixtures.Add(), 1<<20) }},
		{"first/module=1024KiB-code", func() []byte { return wasmfixtures.Functions(1 << 20) }},
	}
	for _, f := range firsts {
		b.Run(f.name, func(b *testing.B) {
			var took []time.Duration
			for range min(b.N, firstInvokeRuns) {
				took = append(took, firstInvoke(b, a, f.module()))
			}
			slices.Sort(took)
			b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
			b.ReportMetric(ms(took[len(took)-1]), "max-ms")
		})
	}
}

// firstInvokeRuns bounds the first-invoke samples, whatever -benchtime.
const firstInvokeRuns = 20

func benchWarm(b *testing.B, client *http.Client, url string, body []byte, conc int) {
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				invokeOnce(b, client, url, body)
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "invokes/s")
	b.ReportMetric(ms(cpuTime()-cpu0)/float64(b.N), "cpu-ms/invoke")
}

func invokeOnce(b *testing.B, client *http.Client, url string, body []byte) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("invoke: %d %s", resp.StatusCode, out)
	}
}

// firstInvoke creates and starts a latent task of module and calls it
// once, as a user would (the call waits for the deploy): the time from the
// create to the answer.
func firstInvoke(b *testing.B, a *app.App, module []byte) time.Duration {
	promoted := promotions(a)
	t0 := time.Now()
	var created apiTask
	json.Unmarshal(call(b, "POST", a.HTTPURL()+"/tasks", map[string]any{"name": "add", "file": b64(module), "latent": true}, http.StatusCreated), &created)
	call(b, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/start", nil, http.StatusOK)
	call(b, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/invoke", map[string]any{"inputs": []string{"1", "2"}}, http.StatusOK)
	took := time.Since(t0)
	call(b, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/stop", nil, http.StatusOK)
	natstest.CheckFor(b, 10*time.Second, func() error { // the next run starts on a quiet proplet
		if n := promotions(a); n == promoted {
			return fmt.Errorf("%d promotions: the compiler is still compiling the module", n)
		}
		return nil
	})
	return took
}

// promotions counts the local proplets' modules promoted from the
// interpreter to the compiler.
func promotions(a *app.App) uint64 {
	var n uint64
	for _, s := range a.PropletStats() {
		n += s.Promoted + s.PromoteFailed
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
