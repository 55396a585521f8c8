package fleetsim

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux platform Go supports.
const clockTicks = 100

// ProcSample is what /proc says of a process at one moment.
type ProcSample struct {
	At      time.Time
	CPU     time.Duration // user + system time since it started
	RSS     int64         // resident memory, bytes (VmRSS)
	PeakRSS int64         // its high-water mark, bytes (VmHWM)
	Threads int
}

// ReadProc samples process pid from /proc (Linux only).
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("fleetsim: sample process %d: %w", pid, err)
	}
	if s.CPU, err = cpuTime(stat); err != nil {
		return s, fmt.Errorf("fleetsim: /proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("fleetsim: sample process %d: %w", pid, err)
	}
	s.RSS = statusKB(status, "VmRSS:") << 10
	s.PeakRSS = statusKB(status, "VmHWM:") << 10
	s.Threads = int(statusKB(status, "Threads:"))
	return s, nil
}

// cpuTime reads utime and stime (fields 14 and 15) from a stat line; the
// command name in parentheses may hold spaces, so fields count from the
// last ')'.
func cpuTime(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(stat[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields", len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// statusKB reads a "Name:   123 kB" (or a plain number) line of
// /proc/<pid>/status; 0 when absent.
func statusKB(status []byte, name string) int64 {
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// CPUPercent is the CPU the process used between two samples, in percent
// of one core (200 on two busy cores).
func CPUPercent(from, to ProcSample) float64 {
	wall := to.At.Sub(from.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(to.CPU-from.CPU) / float64(wall)
}
