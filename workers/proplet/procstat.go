package proplet

import (
	"bytes"
	"errors"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) would
// need cgo, and always answers 100).
const userHZ = 100

// pageSize is the unit of /proc/<pid>/statm.
var pageSize = int64(os.Getpagesize())

// procTimes are a process's CPU seconds, read from /proc/<pid>/stat.
type procTimes struct {
	user, system float64
	threads      int64
}

// readProcStat reads /proc/<pid>/stat ("self" for this process).
func readProcStat(pid string) (procTimes, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return procTimes{}, err
	}
	i := bytes.LastIndexByte(b, ')') // the command may hold spaces and parentheses
	if i < 0 {
		return procTimes{}, errors.New("proc stat: no command")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 18 { // state is f[0]; utime f[11], stime f[12], num_threads f[17]
		return procTimes{}, errors.New("proc stat: short")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	th, _ := strconv.ParseInt(f[17], 10, 64)
	return procTimes{user: ut / userHZ, system: st / userHZ, threads: th}, nil
}

// readRSS is a process's resident set in bytes, from /proc/<pid>/statm.
func readRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * pageSize
}

// hostCPU are the host's CPU jiffies, busy and in all, from /proc/stat.
type hostCPU struct{ busy, total float64 }

func readHostCPU() (hostCPU, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return hostCPU{}, false
	}
	var h hostCPU
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		h.total += v
		if i != 3 && i != 4 { // idle and iowait
			h.busy += v
		}
	}
	return h, true
}

// percentSince is the host's CPU use since prev, 0 to 100 (the Rust
// proplet's average over the cores).
func (h hostCPU) percentSince(prev hostCPU) float64 {
	if d := h.total - prev.total; d > 0 {
		return 100 * (h.busy - prev.busy) / d
	}
	return 0
}

// readCgroupMemory is the memory usage and limit of the proplet's cgroup
// (v2, else v1), as the Rust proplet reads them; nil when absent or
// unlimited.
func readCgroupMemory() (usage, limit *wire.Int) {
	for _, pair := range [][2]string{
		{"/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.max"},
		{"/sys/fs/cgroup/memory/memory.usage_in_bytes", "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
	} {
		u, ok := readInt(pair[0])
		if !ok {
			continue
		}
		if l, ok := readInt(pair[1]); ok && l > 0 && l < 1<<62 { // "max", or v1's "unlimited" near 2^63
			return &u, &l
		}
		return &u, nil
	}
	return nil, nil
}

func readInt(path string) (wire.Int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return wire.Int(v), err == nil
}

// goHeap reads the Go heap from runtime/metrics, which does not stop the
// world as runtime.ReadMemStats does: allocated, obtained from the OS,
// and in use (allocated plus free space in spans in use).
func goHeap() (alloc, sys, inuse wire.Int) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	metrics.Read(s)
	v := func(i int) wire.Int {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return wire.Int(s[i].Value.Uint64())
		}
		return 0
	}
	return v(0), v(1), v(0) + v(2)
}

// collector samples the proplet's process and host for proplet metrics.
type collector struct {
	prev hostCPU
}

// sample is one proplet metrics message.
func (c *collector) sample(id, namespace string, now time.Time) wire.PropletMetrics {
	m := wire.PropletMetrics{PropletID: id, Namespace: namespace, Timestamp: wire.Timestamp{Time: now}}
	if pt, err := readProcStat("self"); err == nil {
		m.CPU.UserSeconds, m.CPU.SystemSeconds = pt.user, pt.system
	}
	if h, ok := readHostCPU(); ok {
		m.CPU.Percent = h.percentSince(c.prev)
		c.prev = h
	}
	m.Memory.RSSBytes = wire.Int(readRSS("self"))
	m.Memory.HeapAllocBytes, m.Memory.HeapSysBytes, m.Memory.HeapInuseBytes = goHeap()
	m.Memory.ContainerUsageBytes, m.Memory.ContainerLimitBytes = readCgroupMemory()
	return m
}
