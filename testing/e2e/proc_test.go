package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/nats-io/nats.go"
)

// The deployment every test uses: topics are m/<tenant>/c/<channel>/...
const (
	tenant  = "e2e"
	channel = "chaos"
)

// ports are the loopback ports of one server, kept across its restarts so
// an external proplet reconnects to the same MQTT address.
type ports struct{ nats, mqtt, http int }

// freePorts picks n distinct free loopback ports: it listens on
// 127.0.0.1:0 n times at once, then closes the listeners.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	out := make([]int, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := range out {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		out[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return out
}

func newPorts(t *testing.T) ports {
	p := freePorts(t, 3)
	return ports{nats: p[0], mqtt: p[1], http: p[2]}
}

// cleanEnv is this process's environment without JETPROP_* and PROPLET_*
// variables, so a developer's settings cannot leak into the subprocesses.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JETPROP_") && !strings.HasPrefix(kv, "PROPLET_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// proc is a subprocess whose output goes to a log file (and to the test
// output with JETPROP_TEST_LOG set).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // from Wait, once done is closed
}

// startProc starts bin with args; its output is appended to logPath, and
// also to sink when not nil.
func startProc(t *testing.T, name, logPath string, sink io.Writer, env []string, bin string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "===== %s %s: %s %s\n", time.Now().Format(time.RFC3339Nano), name, filepath.Base(bin), strings.Join(args, " "))
	var out io.Writer = logf
	if sink != nil {
		out = io.MultiWriter(logf, sink)
	}
	if os.Getenv("JETPROP_TEST_LOG") != "" {
		out = io.MultiWriter(out, prefixWriter{name: name, w: os.Stderr})
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill9)
	return p
}

// kill9 sends SIGKILL (a no-op once the process has ended) and waits for it.
func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to end (SIGTERM), and kills it after timeout.
func (p *proc) stop(timeout time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill9()
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// prefixWriter copies output to w with a name in front (JETPROP_TEST_LOG).
type prefixWriter struct {
	name string
	w    io.Writer
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			fmt.Fprintf(p.w, "[%s] %s", p.name, line)
		}
	}
	return len(b), nil
}

// logFile is the path of a log file for this test: in a temp dir, or in
// JETPROP_E2E_LOGDIR when set, where it stays after the test.
func logFile(t *testing.T, name string) string {
	dir := os.Getenv("JETPROP_E2E_LOGDIR")
	if dir == "" {
		return filepath.Join(t.TempDir(), name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-*-"+name)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

// dumpOnFailure prints the tail of a log file when the test has failed.
func dumpOnFailure(t *testing.T, name, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		lines = lines[max(0, len(lines)-80):]
		t.Logf("last lines of the %s log (%s):\n%s", name, path, strings.Join(lines, "\n"))
	})
}

// server is `jetprop up` running as a subprocess.
type server struct {
	t        *testing.T
	bin      string
	dir      string
	ports    ports
	proplets int
	logPath  string
	starts   int
	flags    []string // more flags of `jetprop up`, after the others

	proc *proc
	url  string
	api  *client.Client
}

// startServer runs `jetprop up` on dir and p, with that many local proplets,
// and returns once GET /health answers.
func startServer(t *testing.T, dir string, p ports, proplets int) *server {
	t.Helper()
	return startServerWith(t, dir, p, proplets)
}

// startServerWith is startServer with more flags of `jetprop up`.
func startServerWith(t *testing.T, dir string, p ports, proplets int, flags ...string) *server {
	t.Helper()
	bin, _ := build(t)
	s := &server{t: t, bin: bin, dir: dir, ports: p, logPath: logFile(t, "jetprop.log"), flags: flags}
	dumpOnFailure(t, "jetprop up", s.logPath)
	s.start(proplets)
	return s
}

func (s *server) start(proplets int) {
	s.t.Helper()
	s.proplets = proplets
	s.starts++
	args := []string{"up",
		"--data", s.dir, "--host", "127.0.0.1",
		"--http", "127.0.0.1:" + strconv.Itoa(s.ports.http),
		"--nats-port", strconv.Itoa(s.ports.nats), "--mqtt-port", strconv.Itoa(s.ports.mqtt),
		"--tenant", tenant, "--channel", channel,
		"--proplets", strconv.Itoa(proplets),
		"--liveness-timeout", "30s", "--log-level", "debug",
	}
	args = append(args, s.flags...)
	s.proc = startProc(s.t, fmt.Sprintf("jetprop#%d", s.starts), s.logPath, nil, cleanEnv(), s.bin, args...)
	s.url = "http://127.0.0.1:" + strconv.Itoa(s.ports.http)
	s.api = client.New(s.url, &http.Client{Timeout: 10 * time.Second})
	s.waitHealthy(60 * time.Second)
}

func (s *server) waitHealthy(timeout time.Duration) {
	s.t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.api.Health(ctx)
		cancel()
		switch {
		case err == nil:
			s.t.Logf("jetprop up #%d (--proplets %d) healthy after %s", s.starts, s.proplets, time.Since(start).Round(time.Millisecond))
			return
		case s.proc.exited():
			s.t.Fatalf("jetprop up #%d exited before it was healthy: %v", s.starts, s.proc.err)
		case time.Since(start) > timeout:
			s.t.Fatalf("jetprop up #%d not healthy after %s: %v", s.starts, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9 kills the server with SIGKILL and waits until it is gone.
func (s *server) kill9() {
	s.t.Helper()
	s.proc.kill9()
	var ee *exec.ExitError
	if !errors.As(s.proc.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		s.t.Fatalf("jetprop up #%d did not die of SIGKILL: %v", s.starts, s.proc.err)
	}
}

// restart starts the server again on the same data dir and ports.
func (s *server) restart(proplets int) {
	s.t.Helper()
	if !s.proc.exited() {
		s.t.Fatal("restart of a server that is still running")
	}
	s.start(proplets)
}

// cli runs a jetprop client command against the server and returns its
// standard output, trimmed.
func (s *server) cli(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = cleanEnv("JETPROP_SERVER=" + s.url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("jetprop %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String())
}

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// edgeProplet is bin/proplet running as a subprocess, configured the way
// Propeller's proplets are: through PROPLET_* variables.
type edgeProplet struct {
	id      string
	dataDir string
	proc    *proc
	out     *syncBuffer
}

func startEdgeProplet(t *testing.T, mqttPort int, id, qos string) *edgeProplet {
	t.Helper()
	_, bin := build(t)
	e := &edgeProplet{id: id, dataDir: t.TempDir(), out: &syncBuffer{}}
	logPath := logFile(t, "proplet-"+id+".log")
	dumpOnFailure(t, "proplet "+id, logPath)
	env := cleanEnv(
		"PROPLET_MQTT_ADDRESS=tcp://127.0.0.1:"+strconv.Itoa(mqttPort),
		"PROPLET_TENANT_ID="+tenant, "PROPLET_CHANNEL_ID="+channel,
		"PROPLET_ENTITY_ID="+id, "PROPLET_DATA_DIR="+e.dataDir,
		"PROPLET_MQTT_QOS="+qos, "PROPLET_LIVELINESS_INTERVAL=1", "PROPLET_LOG_LEVEL=debug",
	)
	e.proc = startProc(t, "proplet "+id, logPath, e.out, env, bin)
	t.Cleanup(func() { e.proc.stop(10 * time.Second) })
	return e
}

// logged reports whether the proplet logged a line holding every part.
func (e *edgeProplet) logged(parts ...string) bool { return e.count(parts...) > 0 }

// count counts the lines the proplet logged that hold every part.
func (e *edgeProplet) count(parts ...string) int {
	n := 0
	for line := range strings.SplitSeq(e.out.String(), "\n") {
		if containsAll(line, parts...) {
			n++
		}
	}
	return n
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// natsConn connects to the server's NATS port as the engine, with the
// password it keeps in its data dir (app.EngineSecretFile): the port
// admits nobody else.
func (s *server) natsConn(opts ...nats.Option) *nats.Conn {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, app.EngineSecretFile))
	if err != nil {
		s.t.Fatal(err)
	}
	opts = append([]nats.Option{nats.UserInfo(natsserver.EngineUser, strings.TrimSpace(string(b)))}, opts...)
	nc, err := nats.Connect("nats://127.0.0.1:"+strconv.Itoa(s.ports.nats), opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	return nc
}
