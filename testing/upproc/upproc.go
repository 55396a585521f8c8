// Package upproc runs `jetprop up --proplets 0` as a process of its own,
// as in production, for the benchmarks (`make fleet-bench`, `make
// restart-bench`): free loopback ports kept across restarts, a start that
// waits for GET /health, a stop by SIGTERM that is timed and kills after
// a wait.
package upproc

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

// HealthTimeout bounds a start until GET /health answers.
const HealthTimeout = 10 * time.Minute

// healthPoll is the pause between two GET /health.
const healthPoll = 10 * time.Millisecond

// Server is `jetprop up --proplets 0` on Dir/data, its output appended to
// LogPath.
type Server struct {
	Bin, Dir, LogPath string
	Flags             []string // more flags for `jetprop up`, after the others
	HTTP, MQTT, NATS  int      // ports, kept across restarts
	cmd               *exec.Cmd
	done              chan error
}

// New picks the server's ports; it does not start it.
func New(bin, dir, logPath string, flags ...string) (*Server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return &Server{Bin: bin, Dir: dir, LogPath: logPath, Flags: flags, HTTP: ports[0], MQTT: ports[1], NATS: ports[2]}, nil
}

func (s *Server) HTTPURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.HTTP) }
func (s *Server) MQTTURL() string { return "tcp://127.0.0.1:" + strconv.Itoa(s.MQTT) }
func (s *Server) NATSURL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.NATS) }
func (s *Server) DataDir() string { return filepath.Join(s.Dir, "data") }
func (s *Server) PID() int        { return s.cmd.Process.Pid }

// Start runs the server and returns how long it took to serve GET /health.
func (s *Server) Start(ctx context.Context) (time.Duration, error) {
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	s.cmd = exec.Command(s.Bin, s.args()...)
	s.cmd.Stdout, s.cmd.Stderr, s.cmd.Env = logf, logf, CleanEnv()
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

func (s *Server) args() []string {
	return append([]string{"up", "--data", s.DataDir(), "--proplets", "0", "--log-level", "warn",
		"--http", "127.0.0.1:" + strconv.Itoa(s.HTTP), "--nats-port", strconv.Itoa(s.NATS), "--mqtt-port", strconv.Itoa(s.MQTT)}, s.Flags...)
}

func (s *Server) waitHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(s.HTTPURL() + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("jetprop up exited: %v (log: %s)", err, s.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("jetprop up not serving /health: %w (log: %s)", context.Cause(ctx), s.LogPath)
		case <-time.After(healthPoll):
		}
	}
}

// Stop sends SIGTERM and returns how long the process took to exit; after
// wait it is killed, which is an error.
func (s *Server) Stop(wait time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case err := <-s.done:
		took := time.Since(start)
		s.done <- err // for Kill
		if err != nil {
			return took, fmt.Errorf("jetprop up after SIGTERM: %w (log: %s)", err, s.LogPath)
		}
		return took, nil
	case <-time.After(wait):
		s.Kill()
		return 0, fmt.Errorf("jetprop up still running %s after SIGTERM: killed (log: %s)", wait, s.LogPath)
	}
}

// Kill ends the process if it still runs, and waits for it.
func (s *Server) Kill() {
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

// CleanEnv is the environment without JETPROP_* and PROPLET_* variables,
// so that only the flags configure jetprop and a developer's settings do
// not change the runs.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JETPROP_") && !strings.HasPrefix(kv, "PROPLET_") {
			env = append(env, kv)
		}
	}
	return env
}
