package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
)

// healthTimeout bounds a start until GET /health answers.
const healthTimeout = 10 * time.Minute

// server is `jetprop up --proplets 0` as a process of its own.
type server struct {
	bin, dir, logPath string
	http, mqtt, nats  int // ports, kept across restarts
	cmd               *exec.Cmd
	done              chan error
}

// startServer starts the server on data dir, its output appended to logPath.
func startServer(ctx context.Context, bin, dir, logPath string) (*server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dir: dir, logPath: logPath, http: ports[0], mqtt: ports[1], nats: ports[2]}
	return s, s.start(ctx)
}

func (s *server) httpURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.http) }
func (s *server) mqttURL() string { return "tcp://127.0.0.1:" + strconv.Itoa(s.mqtt) }
func (s *server) natsURL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.nats) }
func (s *server) pid() int        { return s.cmd.Process.Pid }

// passwordFile holds the engine's NATS password (app.EngineSecretFile).
func (s *server) passwordFile() string { return filepath.Join(s.dir, "data", app.EngineSecretFile) }

// start runs the server and waits until GET /health answers.
func (s *server) start(ctx context.Context) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.bin, "up", "--data", filepath.Join(s.dir, "data"), "--proplets", "0",
		"--http", "127.0.0.1:"+strconv.Itoa(s.http), "--nats-port", strconv.Itoa(s.nats), "--mqtt-port", strconv.Itoa(s.mqtt),
		"--log-level", "warn")
	s.cmd.Stdout, s.cmd.Stderr, s.cmd.Env = logf, logf, cleanEnv()
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	return s.waitHealth(ctx)
}

func (s *server) waitHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(s.httpURL() + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("jetprop up exited: %v (log: %s)", err, s.logPath)
		case <-ctx.Done():
			return fmt.Errorf("jetprop up not serving /health: %w (log: %s)", context.Cause(ctx), s.logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and returns how long the process took to exit; after
// wait it is killed, which is an error.
func (s *server) stop(wait time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case err := <-s.done:
		took := time.Since(start)
		s.done <- err // for kill
		if err != nil {
			return took, fmt.Errorf("jetprop up after SIGTERM: %w (log: %s)", err, s.logPath)
		}
		return took, nil
	case <-time.After(wait):
		s.kill()
		return 0, fmt.Errorf("jetprop up still running %s after SIGTERM: killed (log: %s)", wait, s.logPath)
	}
}

// kill ends the process if it still runs, and waits for it.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
}

// freePorts picks n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

var (
	levelRE  = regexp.MustCompile(`level=(WARN|ERROR)`)
	msgRE    = regexp.MustCompile(`msg=("(?:\\.|[^"\\])*"|[^ ]*)`)
	errRE    = regexp.MustCompile(` err=("(?:\\.|[^"\\])*"|[^ ]*)`)
	digitsRE = regexp.MustCompile(`[0-9]+`)
)

// logProblems counts the server's warnings and errors by message, with
// numbers (ports, ids, sequences) replaced by N so that one kind counts
// as one; the most frequent first.
func logProblems(path string) (map[string]int, []string) {
	counts := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return counts, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		lvl := levelRE.FindStringSubmatch(line)
		m := msgRE.FindStringSubmatch(line)
		if lvl == nil || m == nil {
			continue
		}
		msg := lvl[1] + " " + m[1]
		if e := errRE.FindStringSubmatch(line); e != nil {
			msg += ": " + e[1]
		}
		msg = digitsRE.ReplaceAllString(msg, "N")
		counts[truncate(msg, 160)]++
	}
	order := make([]string, 0, len(counts))
	for m := range counts {
		order = append(order, m)
	}
	sort.Slice(order, func(i, j int) bool { return counts[order[i]] > counts[order[j]] })
	return counts, order
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
