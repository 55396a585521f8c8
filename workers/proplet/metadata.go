package proplet

import (
	"bufio"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// Version is reported as proplet_version in discovery.
const Version = "0.1.0-dev"

// metadata describes this proplet for the discovery message.
func metadata(externalRuntime string) wire.Metadata {
	host, _ := os.Hostname()
	rt := "wazero"
	if externalRuntime != "" {
		rt = filepath.Base(externalRuntime)
	}
	return wire.Metadata{
		Environment:      "binary",
		OS:               goruntime.GOOS,
		CPUArch:          goruntime.GOARCH,
		Hostname:         host,
		PropletVersion:   Version,
		WasmRuntime:      rt,
		TotalMemoryBytes: totalMemory(),
	}
}

// totalMemory reads MemTotal from /proc/meminfo; 0 where there is none.
func totalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
