package fleetsim_test

import (
	"os"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/fleetsim"
)

func TestReadProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	a, err := fleetsim.ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); { // burn some CPU
	}
	b, err := fleetsim.ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if b.RSS <= 0 || b.PeakRSS < b.RSS || b.Threads <= 0 || b.CPU < a.CPU {
		t.Errorf("samples %+v then %+v", a, b)
	}
	if p := fleetsim.CPUPercent(a, b); p < 0 {
		t.Errorf("CPU %.1f%%", p)
	}
	if _, err := fleetsim.ReadProc(-1); err == nil {
		t.Error("ReadProc(-1): no error")
	}
}

func TestCPUPercent(t *testing.T) {
	t0 := time.Unix(0, 0)
	from := fleetsim.ProcSample{At: t0, CPU: time.Second}
	to := fleetsim.ProcSample{At: t0.Add(2 * time.Second), CPU: 4 * time.Second}
	if got := fleetsim.CPUPercent(from, to); got != 150 {
		t.Errorf("CPUPercent %.1f, want 150 (three seconds of CPU in two)", got)
	}
	if got := fleetsim.CPUPercent(to, to); got != 0 {
		t.Errorf("no time: %.1f", got)
	}
}
