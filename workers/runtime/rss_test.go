package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

// rssEnv turns on TestWazero_GrowRSS: JETPROP_RSS_MIB=256,4096 runs the
// growth case at each cap (MiB) and logs the process's RSS.
const rssEnv = "JETPROP_RSS_MIB"

// TestWazero_GrowRSS measures what a module growing its memory a page at a
// time, up to its cap, costs this process: resident memory before, the
// peak during (VmHWM, reset before each case) and after. It fails when the
// peak passes the cap plus rssSlack or the memory is not given back.
//
//	JETPROP_RSS_MIB=256,4096 go test -run TestWazero_GrowRSS -v ./workers/runtime/
func TestWazero_GrowRSS(t *testing.T) {
	caps := os.Getenv(rssEnv)
	if caps == "" {
		t.Skip("set " + rssEnv + "=256,4096 to measure")
	}
	const rssSlack = 100 << 10 // KiB over the cap
	for _, s := range strings.Split(caps, ",") {
		mib, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(s+"MiB", func(t *testing.T) {
			w := newWazero(t, runtime.Options{})
			before := resetPeak(t)
			start := time.Now()
			got, err := w.Run(context.Background(), runtime.Job{Module: wasmfixtures.GrowLoop(), Function: "run",
				MemoryLimitPages: uint32(mib) * 16})
			took := time.Since(start)
			peak, after := procStatus(t, "VmHWM"), procStatus(t, "VmRSS")
			t.Logf("cap %d MiB: result %s (%v) in %v; RSS before %d MiB, peak %d MiB, after %d MiB",
				mib, got, err, took.Round(time.Millisecond), before>>10, peak>>10, after>>10)
			if want := strconv.Itoa(mib * 16); got != want || err != nil {
				t.Errorf("result %q, %v; want %s pages", got, err, want)
			}
			if peak-before > int64(mib)<<10+rssSlack {
				t.Errorf("peak %d MiB over a start of %d MiB: more than the cap plus %d MiB", peak>>10, before>>10, rssSlack>>10)
			}
			if after-before > rssSlack {
				t.Errorf("RSS after the task %d MiB, before %d MiB: not given back", after>>10, before>>10)
			}
		})
	}
}

// resetPeak resets VmHWM to the current RSS (Linux: clear_refs 5) and
// returns the RSS in KiB.
func resetPeak(t *testing.T) int64 {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	return procStatus(t, "VmRSS")
}

// procStatus reads a KiB field of /proc/self/status.
func procStatus(t *testing.T, key string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return 0
}
