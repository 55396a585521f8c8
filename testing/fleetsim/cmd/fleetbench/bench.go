package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/testing/fleetsim"
	"github.com/jetprop/jetprop/testing/upproc"
)

func run(ctx context.Context, args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%w (make build first)", err)
	}
	if o.logs == "" {
		o.logs, err = os.MkdirTemp("", "jetprop-fleetbench-logs-")
	} else {
		err = os.MkdirAll(o.logs, 0o755)
	}
	if err != nil {
		return err
	}
	var reports []fleetsim.Report
	var notes []string
	for _, n := range o.sizes {
		r, note, err := benchOne(ctx, o, n)
		if err != nil {
			return fmt.Errorf("%d devices: %w", n, err)
		}
		reports, notes = append(reports, r), append(notes, note)
	}
	if o.json {
		b, err := json.MarshalIndent(reports, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Printf("%s\n", b)
		return err
	}
	return printTable(o, reports, notes)
}

func printTable(o options, reports []fleetsim.Report, notes []string) error {
	fmt.Printf("\njetprop fleet bench, %s, %s, %d cores (%s), %s/%s\n\n", time.Now().UTC().Format("2006-01-02"),
		version(o.bin), runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH)
	if err := fleetsim.WriteTable(os.Stdout, reports...); err != nil {
		return err
	}
	fmt.Printf("\nsim: %s\nserver logs: %s\n", strings.Join(o.simArgs, " "), o.logs)
	for _, n := range notes {
		fmt.Println(n)
	}
	fmt.Print(dispatchRatios(reports))
	return nil
}

// dispatchRatios says each fleet's dispatch rate as a share of the first
// fleet's (the target: at 10,000 devices, at least 80 % of 2's).
func dispatchRatios(reports []fleetsim.Report) string {
	if len(reports) < 2 || reports[0].Dispatch == nil || reports[0].Dispatch.PerSecond == 0 {
		return ""
	}
	base := reports[0]
	var b strings.Builder
	for _, r := range reports[1:] {
		if r.Dispatch != nil {
			fmt.Fprintf(&b, "- dispatch with %d devices: %.0f %% of the rate with %d\n", r.Devices,
				100*r.Dispatch.PerSecond/base.Dispatch.PerSecond, base.Devices)
		}
	}
	return b.String()
}

// benchOne measures one fleet size on a fresh server.
func benchOne(ctx context.Context, o options, devices int) (fleetsim.Report, string, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("jetprop-fleetbench-%d-", devices))
	if err != nil {
		return fleetsim.Report{}, "", err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	s, err := startServer(ctx, o.bin, dir, filepath.Join(o.logs, fmt.Sprintf("jetprop-%d.log", devices)))
	if err != nil {
		return fleetsim.Report{}, "", err
	}
	defer s.Kill()
	load := loadAvg()
	fmt.Fprintf(os.Stderr, "== %d devices: jetprop up pid %d, data %s, load average %s\n", devices, s.PID(), dir, load)
	r, err := runSim(ctx, o, s, devices)
	if err != nil {
		return r, "", err
	}
	if err := restart(ctx, o, s, &r); err != nil {
		return r, "", err
	}
	return r, notes(r, load, s.LogPath, s.DataDir()), nil
}

// runSim runs `jetprop sim` against s and decodes its JSON report.
func runSim(ctx context.Context, o options, s *upproc.Server, devices int) (fleetsim.Report, error) {
	args := append([]string{"sim", "--devices", strconv.Itoa(devices), "--mqtt-url", s.MQTTURL(),
		"--server", s.HTTPURL(), "--pid", strconv.Itoa(s.PID()), "--nats-url", s.NATSURL(),
		"--nats-password-file", passwordFile(s), "-o", "json"}, o.simArgs...)
	cmd := exec.CommandContext(ctx, o.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	cmd.Env = upproc.CleanEnv()
	if err := cmd.Run(); err != nil {
		return fleetsim.Report{}, fmt.Errorf("jetprop sim: %w", err)
	}
	var r fleetsim.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("jetprop sim: %w: %s", err, out.Bytes())
	}
	return r, nil
}

// restart stops s gracefully, timing it, starts it again on the same data,
// timing it until GET /health answers, and stops it.
func restart(ctx context.Context, o options, s *upproc.Server, r *fleetsim.Report) error {
	took, err := s.Stop(o.stopWait)
	if err != nil {
		return err
	}
	d := fleetsim.Duration(took)
	r.Shutdown = &d
	fmt.Fprintf(os.Stderr, "== graceful shutdown took %s; starting again\n", took.Round(time.Millisecond))
	took, err = s.Start(ctx)
	if err != nil {
		return err
	}
	up := fleetsim.Duration(took)
	r.Restart = &up
	fmt.Fprintf(os.Stderr, "== serving /health after %s\n", time.Duration(up).Round(time.Millisecond))
	_, err = s.Stop(o.stopWait)
	return err
}

func version(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "jetprop ?"
	}
	return strings.TrimSpace(string(out))
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// notes says what the table does not: the box's load when the run
// started, the simulator's own cost, the data dir's size and the server's
// log (its warnings and errors, the most frequent first).
func notes(r fleetsim.Report, load, logPath, data string) string {
	counts, order := logProblems(logPath)
	var b strings.Builder
	fmt.Fprintf(&b, "- %d devices: load average %s at the start", r.Devices, load)
	if st := r.Steady; st != nil {
		fmt.Fprintf(&b, "; the simulator used %.1f %% CPU, %.0f MiB, %d goroutines", st.SimCPUPercent, float64(st.SimRSS)/(1<<20), st.SimGoroutines)
	}
	if f := r.Fleet; f.SubscribeRefused > 0 || f.ConnectErrors > 0 || f.HeartbeatErrors > 0 {
		fmt.Fprintf(&b, "; %d subscriptions refused (retried every heartbeat; %d devices unreachable at the end), %d connect errors, %d heartbeats not acknowledged",
			f.SubscribeRefused, f.Unreachable, f.ConnectErrors, f.HeartbeatErrors)
	}
	fmt.Fprintf(&b, "; data dir %s in %d files", duSize(data), countFiles(data))
	if len(order) == 0 {
		b.WriteString("; no warnings or errors in the server's log")
	}
	for i, msg := range order {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d other kinds", len(order)-3)
			break
		}
		fmt.Fprintf(&b, "; %d× %s", counts[msg], msg)
	}
	return b.String()
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func duSize(dir string) string {
	var total int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return fmt.Sprintf("%.0f MiB", float64(total)/(1<<20))
}

func countFiles(dir string) int {
	n := 0
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return nil
	})
	return n
}
