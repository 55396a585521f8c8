package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is `jetprop up --proplets 0` as a process of its own.
type server struct {
	bin, dir, logPath string
	http, mqtt, nats  int
	extra             []string
	cmd               *exec.Cmd
	done              chan error
}

func newServer(bin, dir string, extra []string) (*server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return &server{bin: bin, dir: dir, logPath: filepath.Join(dir, "server.log"), http: ports[0], mqtt: ports[1], nats: ports[2], extra: extra}, nil
}

func (s *server) httpURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.http) }
func (s *server) dataDir() string { return filepath.Join(s.dir, "data") }

// start runs the server and returns how long it took to serve GET /health.
func (s *server) start(ctx context.Context) (time.Duration, error) {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	args := append([]string{"up", "--data", s.dataDir(), "--proplets", "0", "--log-level", "warn",
		"--http", "127.0.0.1:" + strconv.Itoa(s.http), "--nats-port", strconv.Itoa(s.nats), "--mqtt-port", strconv.Itoa(s.mqtt)}, s.extra...)
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr, s.cmd.Env = logf, logf, cleanEnv()
	began := time.Now()
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return 0, err
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	if err := s.waitHealth(ctx); err != nil {
		return 0, err
	}
	return time.Since(began), nil
}

func (s *server) waitHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(s.httpURL() + "/health"); err == nil {
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
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for the process; after a minute it is killed.
func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.done:
		return err
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("jetprop up still running a minute after SIGTERM: killed (log: %s)", s.logPath)
	}
}

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

// cleanEnv is the environment without JETPROP_ and PROPLET_ variables, so
// that only the flags configure the server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JETPROP_") && !strings.HasPrefix(kv, "PROPLET_") {
			env = append(env, kv)
		}
	}
	return env
}
