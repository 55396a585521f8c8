package proplet_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetprop/jetprop/workers/proplet"
)

// childEnv makes the test binary run a proplet instead of the tests, with
// the Config the variable holds as JSON: a real process to kill -9.
const childEnv = "JETPROP_PROPLET_TEST_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		if err := runChild(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild runs the proplet of the JSON config until SIGINT or SIGTERM,
// logging at debug level to stderr.
func runChild(config string) error {
	var cfg proplet.Config
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := proplet.New(cfg, log.With("component", "proplet"))
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// child is a proplet running in its own process.
type child struct {
	t   testing.TB
	cmd *exec.Cmd

	mu    sync.Mutex
	lines []string
	more  chan struct{} // signalled on every new line
	done  chan struct{} // closed when stderr ends
}

// startChild runs the proplet of cfg in a new process, logging at debug
// level to a pipe the test reads.
func startChild(t testing.TB, cfg proplet.Config) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(config))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read(stderr)
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *child) read(r io.Reader) {
	defer close(c.done)
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		c.mu.Lock()
		c.lines = append(c.lines, s.Text())
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
	}
}

// waitLog waits for a log line containing every one of parts.
func (c *child) waitLog(parts ...string) {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		if c.logged(parts) {
			return
		}
		select {
		case <-c.more:
		case <-c.done:
			if c.logged(parts) {
				return
			}
			c.t.Fatalf("proplet process ended without logging %q:\n%s", parts, c.log())
		case <-deadline:
			c.t.Fatalf("proplet process did not log %q:\n%s", parts, c.log())
		}
	}
}

func (c *child) logged(parts []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return hasLine(c.lines, parts)
}

func (c *child) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// kill sends SIGKILL: no deferred call, no DISCONNECT, no result.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	<-c.done
	c.cmd.Wait()
}
