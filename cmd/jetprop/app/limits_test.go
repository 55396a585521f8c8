package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// limitsConfig is a server with short HTTP timeouts, so that the tests
// see them act in about a second.
func limitsConfig(dir string) app.Config {
	cfg := testConfig(dir, 0)
	cfg.HTTPReadHeaderTimeout, cfg.HTTPReadTimeout, cfg.HTTPWriteTimeout, cfg.HTTPIdleTimeout = time.Second, time.Second, time.Second, time.Second
	cfg.HTTPMinReadRate = 256 << 10
	return cfg
}

// dialHTTP opens a raw connection to the app's HTTP listener.
func dialHTTP(t *testing.T, a *app.App) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.HTTPURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedWithin reads from conn until the server closes it and returns
// how long that took (what it sent, if anything, in answer).
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server held the connection for %s: %q", limit, b)
	}
	return time.Since(start), string(b)
}

// TestApp_HTTPTimeouts: a client that trickles its headers or its body
// (slowloris) is cut at the configured timeouts; an idle keep-alive
// connection is closed; a long poll outlives the read and write timeouts.
func TestApp_HTTPTimeouts(t *testing.T) {
	a := startApp(t, limitsConfig(t.TempDir()))
	t.Run("headers never finished", func(t *testing.T) {
		conn := dialHTTP(t, a)
		fmt.Fprintf(conn, "POST /tasks HTTP/1.1\r\nHost: jetprop\r\n")
		if took, _ := closedWithin(t, conn, 10*time.Second); took > 3*time.Second {
			t.Fatalf("closed after %s, want about --http-read-header-timeout (1s)", took)
		}
	})
	t.Run("body at 1 byte every 200ms", func(t *testing.T) {
		conn := dialHTTP(t, a)
		fmt.Fprintf(conn, "POST /tasks HTTP/1.1\r\nHost: jetprop\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":\"")
		stop := trickle(conn, 200*time.Millisecond)
		defer stop()
		took, answer := closedWithin(t, conn, 10*time.Second)
		if took > 3*time.Second {
			t.Fatalf("closed after %s, want about --http-read-timeout (1s)", took)
		}
		if !strings.HasPrefix(answer, "HTTP/1.1 408") || !strings.Contains(answer, "--http-min-read-rate") {
			t.Fatalf("answer %q, want 408 naming the bound", answer)
		}
	})
	t.Run("idle keep-alive connection", func(t *testing.T) {
		conn := dialHTTP(t, a)
		fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: jetprop\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("health: %v %v", resp, err)
		}
		if took, _ := closedWithin(t, conn, 10*time.Second); took > 3*time.Second {
			t.Fatalf("idle connection closed after %s, want about --http-idle-timeout (1s)", took)
		}
	})
	t.Run("a long poll outlives the timeouts", func(t *testing.T) {
		c := client.New(a.HTTPURL(), nil)
		task, err := c.CreateTask(t.Context(), httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		status, _, body := getWith(t, a.HTTPURL()+"/tasks/"+task.ID+"/results?wait=2500ms", "")
		if status != http.StatusOK || !strings.Contains(body, `"pending"`) || time.Since(start) < 2*time.Second {
			t.Fatalf("results after %s: %d %s; want pending after the whole wait", time.Since(start), status, body)
		}
	})
}

// trickle writes one byte of a JSON string to conn every period until
// stopped or refused.
func trickle(conn net.Conn, period time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// TestApp_SlowUploadWithinRate: an upload that takes longer than
// --http-read-timeout but comes faster than --http-min-read-rate is
// taken whole.
func TestApp_SlowUploadWithinRate(t *testing.T) {
	a := startApp(t, limitsConfig(t.TempDir()))
	c := client.New(a.HTTPURL(), nil)
	task, err := c.CreateTask(t.Context(), httpapi.TaskRequest{Name: "add"})
	if err != nil {
		t.Fatal(err)
	}
	module := padWasm(wasmfixtures.Add(), 1<<20)
	start := time.Now()
	got, err := c.UploadModule(t.Context(), task.ID, &throttled{r: bytes.NewReader(module), chunk: 32 << 10, period: 60 * time.Millisecond})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("upload of %d bytes in %s: %v", len(module), took, err)
	}
	if got.ModuleSize != int64(len(module)) || took < 1500*time.Millisecond {
		t.Fatalf("module of %d bytes in %s, want %d bytes in more than the read timeout", got.ModuleSize, took, len(module))
	}
}

// throttled hands out chunk bytes per period (about 530 KiB/s here).
type throttled struct {
	r      io.Reader
	chunk  int
	period time.Duration
	last   time.Time
}

func (t *throttled) Read(p []byte) (int, error) {
	if wait := time.Until(t.last.Add(t.period)); wait > 0 {
		time.Sleep(wait) // the upload's pace, not a wait for a condition
	}
	t.last = time.Now()
	return t.r.Read(p[:min(len(p), t.chunk)])
}

// padWasm appends a custom section so that the module is about n bytes.
func padWasm(mod []byte, n int) []byte {
	content := append([]byte{3}, "pad"...)
	content = append(content, make([]byte, n-len(mod))...)
	out := append(append([]byte(nil), mod...), 0)
	for v := uint64(len(content)); ; {
		b := byte(v & 0x7f)
		if v >>= 7; v != 0 {
			out = append(out, b|0x80)
			continue
		}
		out = append(out, b)
		break
	}
	return append(out, content...)
}

// TestApp_RequestsPerClient: a client over --http-max-per-client is
// answered 429 with Retry-After; with --auth on a client is its token, so
// another token from the same address is served; a slot freed is taken.
func TestApp_RequestsPerClient(t *testing.T) {
	dir := t.TempDir()
	cfg := limitsConfig(dir)
	cfg.Auth, cfg.HTTPMaxPerClient = true, 2
	a := startApp(t, cfg)
	adminSecret, err := os.ReadFile(app.AdminTokenPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(a.HTTPURL(), nil, client.WithToken(string(adminSecret)))
	op, err := admin.CreateToken(t.Context(), "op", domain.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	task, err := admin.CreateTask(t.Context(), httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, release := context.WithCancel(t.Context())
	var held sync.WaitGroup
	for range 2 { // two long polls hold the admin token's two slots
		held.Go(func() { _, _ = admin.Results(ctx, task.ID, time.Minute) })
	}
	defer held.Wait()
	defer release()
	natstest.CheckFor(t, 10*time.Second, func() error {
		status, header, body := getWith(t, a.HTTPURL()+"/tasks", string(adminSecret))
		if status != http.StatusTooManyRequests {
			return fmt.Errorf("status %d, want 429 while two requests are in flight", status)
		}
		if header.Get("Retry-After") != "1" || !strings.Contains(body, "the limit is 2 at once (--http-max-per-client)") {
			return fmt.Errorf("429 without Retry-After or the bound: %v %s", header, body)
		}
		return nil
	})
	if status, _, body := getWith(t, a.HTTPURL()+"/tasks", op.Secret); status != http.StatusOK {
		t.Fatalf("another token from the same address: %d %s", status, body)
	}
	if status, _, body := getWith(t, a.HTTPURL()+"/health", ""); status != http.StatusOK {
		t.Fatalf("health is not counted: %d %s", status, body)
	}
	release()
	held.Wait()
	natstest.CheckFor(t, 10*time.Second, func() error {
		if status, _, body := getWith(t, a.HTTPURL()+"/tasks", string(adminSecret)); status != http.StatusOK {
			return fmt.Errorf("after the polls ended: %d %s", status, body)
		}
		return nil
	})
}

func getWith(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e httpapi.Error
	if resp.StatusCode >= 400 && json.Unmarshal(b, &e) != nil {
		t.Fatalf("error answer that is not JSON: %s", b)
	}
	return resp.StatusCode, resp.Header, string(b)
}
