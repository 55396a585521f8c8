package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// badInput is one row of the bad-input regression suite (issue 12,
// criterion 7): one hostile or careless input, sent to a running `jetprop
// up`, and what must come of it. The input is an HTTP request (method and
// path), a command line (args), or a device message (topic); anything in
// braces ({done}, {dir}, ...) is replaced by the suite's fixtures (see
// badRig.vars).
type badInput struct {
	name string

	method, path string            // an HTTP request ...
	header       map[string]string // Content-Type defaults to application/json when there is a body
	body         string
	args         []string // ... or jetprop's command line, against the server (JETPROP_SERVER)
	stdin        string
	topic        string // ... or a device message: the topic after m/<tenant>/c/<channel>/
	payload      string
	custom       func(ctx context.Context, r *badRig, s *badServer) (int, string, error) // ... or anything else

	// as runs the row against the server with --auth on, as: "anonymous"
	// (no token), "wrong-token", "viewer" or "admin". "" is the dev-mode
	// server.
	as string

	want    int    // the HTTP status or the CLI's exit code
	outcome string // a device message: "malformed" or "ignored:<reason>" of GET /inbound/stats; "recorded": neither (a no-op)
	msg     string // in the error message (HTTP "error", CLI stderr; the body or stdout of a success)
	// changes are the fingerprint keys (badServer.fingerprint) a row that
	// legitimately creates something may change; every other key must stay.
	changes []string
}

func (b badInput) kind() string {
	switch {
	case b.custom != nil:
		return "custom"
	case b.topic != "":
		return "device"
	case b.args != nil:
		return "cli"
	}
	return "http"
}

// TestBadInput runs every row of badInputs against one `jetprop up` with
// a local proplet (and the auth rows against one with --auth on), each row
// checked for its answer, a server still up, and a fingerprint of the
// state (counts and the last sequence of every event stream) unchanged but
// for what the row declares.
func TestBadInput(t *testing.T) {
	skipShort(t)
	rig := newBadRig(t)
	rows := badInputs(rig)
	if n := len(rows); n < 60 {
		t.Errorf("%d rows run, want at least 60 (issue 12, criterion 7)", n)
	}
	names := map[string]bool{}
	for _, row := range rows {
		if names[row.name] {
			t.Fatalf("two rows named %q", row.name)
		}
		names[row.name] = true
		t.Run(row.name, func(t *testing.T) { rig.run(t, row) })
	}
}

// badServer is one server of the suite and what it takes to talk to it.
type badServer struct {
	*server
	token string // the admin token of a server with --auth on
	js    jetstream.JetStream
	log   int64 // how far its log was read for panics
}

// badRig is the suite's servers, fixtures and device.
type badRig struct {
	dev, auth *badServer
	device    paho.Client
	topics    wire.Topics
	dir       string            // files the CLI rows read
	vars      map[string]string // {name} -> value in the rows' inputs
	tokens    map[string]string // as -> bearer token on the auth server
}

func newBadRig(t *testing.T) *badRig {
	t.Helper()
	r := &badRig{topics: wire.Topics{Tenant: tenant, Channel: channel}, dir: t.TempDir(), vars: map[string]string{}}
	r.dev = r.start(t, 1, "--http-read-timeout", "2s") // the slow body row is cut after 2 s
	r.auth = r.start(t, 0, "--auth", "on")
	r.auth.token = readToken(t, filepath.Join(r.auth.dir, app.AdminTokenFile))
	r.tokens = map[string]string{"admin": r.auth.token, "wrong-token": "jp_" + strings.Repeat("0", 40)}
	r.tokens["viewer"] = r.createToken(t, "viewer")
	r.device = r.connectDevice(t)
	r.writeFiles(t)
	r.fixtures(t)
	return r
}

func (r *badRig) start(t *testing.T, proplets int, flags ...string) *badServer {
	t.Helper()
	s := &badServer{server: startServerWith(t, t.TempDir(), newPorts(t), proplets, flags...)}
	nc := s.natsConn()
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s.js = js
	return s
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (r *badRig) createToken(t *testing.T, role string) string {
	t.Helper()
	var tok httpapi.NewToken
	r.mustDo(t, r.auth, "admin", "POST", "/tokens", `{"name":"badinput-`+role+`","role":"`+role+`"}`, &tok)
	return tok.Secret
}

// connectDevice connects the device the device rows publish as, a paho
// client like any proplet's.
func (r *badRig) connectDevice(t *testing.T) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + strconv.Itoa(r.dev.ports.mqtt)).
		SetClientID("badinput-device").SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// writeFiles writes the files the CLI rows name: {dir}/add.wasm, ...
func (r *badRig) writeFiles(t *testing.T) {
	t.Helper()
	files := map[string]string{
		"add.wasm":     string(wasmfixtures.Add()),
		"grow.wasm":    string(wasmfixtures.GrowMemory()),
		"not.wasm":     string(wasmfixtures.Invalid()),
		"empty.yaml":   "",
		"broken.yaml":  "name: w\nsteps: [\n",
		"cyclic.yaml":  "name: w\nsteps:\n - name: a\n   module: add:1\n   function: add\n   depends_on: [b]\n - name: b\n   module: add:1\n   function: add\n   depends_on: [a]\n",
		"unknown.yaml": "name: w\ncolour: red\nsteps:\n - name: a\n   module: add:1\n   function: add\n",
		"badcron.yaml": "name: w\ncron: every day\nsteps:\n - name: a\n   module: add:1\n   function: add\n",
		"noname.yaml":  "steps:\n - name: a\n   module: add:1\n   function: add\n",
		"list.yaml":    "- a\n- b\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.vars["dir"] = r.dir
}

// fixtures makes what the rows refer to, on the dev-mode server: the
// artifact add:1, a task without a module ({pending}), a completed task
// ({done}), a completed workflow ({wf}), a held job ({job}) and a
// provisioned device ({provisioned}); {proplet} is the local proplet.
func (r *badRig) fixtures(t *testing.T) {
	t.Helper()
	s := r.dev
	ps := waitUp(t, s.api, 1)
	r.vars["proplet"] = ps[0].ID
	r.mustDo(t, s, "", "POST", "/artifacts?name=add:1", string(wasmfixtures.Add()), nil, "Content-Type", "application/wasm")
	var task httpapi.Task
	r.mustDo(t, s, "", "POST", "/tasks", `{"name":"add"}`, &task)
	r.vars["pending"] = task.ID
	add := base64.StdEncoding.EncodeToString(wasmfixtures.Add())
	r.mustDo(t, s, "", "POST", "/tasks", `{"name":"add","file":"`+add+`","inputs":["1","2"]}`, &task)
	r.mustDo(t, s, "", "POST", "/tasks/"+task.ID+"/start", "", nil)
	waitStatus(t, s.api, task.ID, "completed", 30*time.Second)
	r.vars["done"] = task.ID
	var wf httpapi.Workflow
	r.mustDo(t, s, "", "POST", "/workflows", `{"name":"w","steps":[{"name":"a","module":"add:1","function":"add","inputs":["1","2"]}]}`, &wf)
	natstest.CheckFor(t, 30*time.Second, func() error {
		var got httpapi.Workflow
		r.mustDo(t, s, "", "GET", "/workflows/"+wf.ID, "", &got)
		if got.State != engine.WorkflowCompleted {
			return fmt.Errorf("workflow %s is %s", wf.ID, got.State)
		}
		return nil
	})
	r.vars["wf"] = wf.ID
	var job httpapi.Job
	r.mustDo(t, s, "", "POST", "/jobs", `{"name":"j","tasks":[{"name":"add","image_url":"add:1","inputs":["1","2"]}]}`, &job)
	r.vars["job"] = job.JobID
	r.mustDo(t, s, "", "POST", "/devices", `{"id":"badinput-provisioned"}`, nil)
	r.vars["provisioned"] = "badinput-provisioned"
}

// mustDo sends a request that must succeed and decodes its answer into out.
func (r *badRig) mustDo(t *testing.T, s *badServer, as, method, path, body string, out any, header ...string) {
	t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	status, b, err := r.send(context.Background(), s, as, method, path, h, body)
	if err != nil || status >= 300 {
		t.Fatalf("%s %s: %d %s %v", method, path, status, b, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// send sends one HTTP request to s, with the token of as.
func (r *badRig) send(ctx context.Context, s *badServer, as, method, path string, header map[string]string, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if tok := r.token(s, as); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// token is the bearer token of as on s: the admin's on the auth server
// unless the row says otherwise, none on the dev-mode server.
func (r *badRig) token(s *badServer, as string) string {
	if s != r.auth {
		return ""
	}
	if as == "" {
		as = "admin"
	}
	return r.tokens[as]
}

func (r *badRig) server(row badInput) *badServer {
	if row.as != "" {
		return r.auth
	}
	return r.dev
}

// run sends one row's input and checks everything the suite promises.
func (r *badRig) run(t *testing.T, row badInput) {
	s := r.server(row)
	before := r.fingerprint(t, s)
	stats := r.inbound(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	row = r.expand(row)
	var status int
	var msg string
	var err error
	switch row.kind() {
	case "http":
		status, msg, err = r.doHTTP(ctx, s, row)
	case "cli":
		status, msg, err = r.doCLI(ctx, s, row)
	case "device":
		err = r.doDevice(t, row, stats)
	case "custom":
		status, msg, err = row.custom(ctx, r, s)
	}
	if err != nil {
		t.Fatal(err)
	}
	if row.kind() != "device" && (status != row.want || !strings.Contains(msg, row.msg)) {
		t.Errorf("got %d %q, want %d and %q", status, msg, row.want, row.msg)
	}
	r.checkAlive(t, s)
	r.checkUnchanged(t, s, before, row.changes)
}

// expand replaces the {name} placeholders of a row's inputs.
func (r *badRig) expand(row badInput) badInput {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(r.vars)) {
		pairs = append(pairs, "{"+k+"}", r.vars[k])
	}
	rep := strings.NewReplacer(pairs...)
	row.path, row.body, row.topic, row.payload = rep.Replace(row.path), rep.Replace(row.body), rep.Replace(row.topic), rep.Replace(row.payload)
	args := make([]string, len(row.args))
	for i, a := range row.args {
		args[i] = rep.Replace(a)
	}
	if row.args != nil {
		row.args = args
	}
	return row
}

// doHTTP sends the row's request; an error answer must be JSON
// {"error": "..."}, and its message is what the row's msg is looked for in.
func (r *badRig) doHTTP(ctx context.Context, s *badServer, row badInput) (int, string, error) {
	status, b, err := r.send(ctx, s, row.as, row.method, row.path, row.header, row.body)
	if err != nil {
		return 0, "", err
	}
	if status < 400 {
		return status, string(b), nil
	}
	var e httpapi.Error
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		return status, string(b), fmt.Errorf("answer %d is not {\"error\": ...}: %q", status, b)
	}
	return status, e.Error, nil
}

// doCLI runs bin/jetprop with the row's args against s and returns its
// exit code and stderr (stdout when it succeeded).
func (r *badRig) doCLI(ctx context.Context, s *badServer, row badInput) (int, string, error) {
	cmd := exec.CommandContext(ctx, s.bin, row.args...)
	env := []string{"JETPROP_SERVER=" + s.url, "JETPROP_DATA=" + r.dir}
	if tok := r.token(s, row.as); tok != "" {
		env = append(env, "JETPROP_TOKEN="+tok)
	}
	cmd.Env, cmd.Stdin, cmd.Dir = cleanEnv(env...), strings.NewReader(row.stdin), r.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), nil
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String(), nil
	}
	return 0, "", err
}

// doDevice publishes the row's message as a device (QoS 1), waits until
// the engine has settled it (EDGE_IN's consumer acked past it) and checks
// that GET /inbound/stats counted it under the row's outcome and nothing
// else a dropped message can end as ("recorded": under none of them).
func (r *badRig) doDevice(t *testing.T, row badInput, before httpapi.InboundStats) error {
	ctx := context.Background()
	edge, err := r.dev.js.Stream(ctx, mqtt.EdgeStream)
	if err != nil {
		return err
	}
	info, err := edge.Info(ctx)
	if err != nil {
		return err
	}
	topic := r.topics.Topic(row.topic)
	tok := r.device.Publish(topic, 1, false, row.payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish: %v", tok.Error())
	}
	seq := r.waitCaptured(t, edge, topic, row.payload, info.State.LastSeq)
	r.waitSettled(t, seq)
	want := outcomes(before)
	if row.outcome != "recorded" {
		want[row.outcome]++
	}
	if got := outcomes(r.inbound(t)); !maps.Equal(got, want) {
		t.Errorf("GET /inbound/stats: outcomes %v, want %v", got, want)
	}
	return nil
}

// waitCaptured returns the sequence EDGE_IN stored the message at, after
// seq.
func (r *badRig) waitCaptured(t *testing.T, edge jetstream.Stream, topic, payload string, after uint64) uint64 {
	t.Helper()
	var seq uint64
	natstest.CheckFor(t, 10*time.Second, func() error {
		m, err := edge.GetLastMsgForSubject(context.Background(), wire.Subject(topic))
		if err != nil || m.Sequence <= after || string(m.Data) != payload {
			return fmt.Errorf("%s not in %s yet: %v", topic, mqtt.EdgeStream, err)
		}
		seq = m.Sequence
		return nil
	})
	return seq
}

// waitSettled waits until the engine's consumer of EDGE_IN has acked
// every message up to seq.
func (r *badRig) waitSettled(t *testing.T, seq uint64) {
	t.Helper()
	c, err := r.dev.js.Consumer(context.Background(), mqtt.EdgeStream, mqtt.EdgeConsumer)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		ci, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if ci.AckFloor.Stream < seq {
			return fmt.Errorf("%s acked up to %d, want %d", mqtt.EdgeConsumer, ci.AckFloor.Stream, seq)
		}
		return nil
	})
}

// outcomes are the counters of GET /inbound/stats a message ends in when
// it is not recorded: "malformed", "retried" and "ignored:<reason>".
func outcomes(s httpapi.InboundStats) map[string]uint64 {
	out := map[string]uint64{"malformed": s.Malformed, "retried": s.Retried}
	for reason, n := range s.IgnoredByReason {
		out["ignored:"+reason] = n
	}
	return out
}

func (r *badRig) inbound(t *testing.T) httpapi.InboundStats {
	t.Helper()
	var st httpapi.InboundStats
	r.mustDo(t, r.dev, "", "GET", "/inbound/stats", "", &st)
	return st
}

// checkAlive fails unless GET /health answers 200 and the server's log
// holds no panic since the last look.
func (r *badRig) checkAlive(t *testing.T, s *badServer) {
	t.Helper()
	status, b, err := r.send(context.Background(), s, "", "GET", "/health", nil, "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /health after the row: %d %s %v", status, b, err)
	}
	f, err := os.Open(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logged, err := io.ReadAll(io.NewSectionReader(f, s.log, 1<<40))
	if err != nil {
		t.Fatal(err)
	}
	s.log += int64(len(logged))
	if i := bytes.Index(logged, []byte("panic")); i >= 0 {
		t.Errorf("the server logged a panic:\n%s", logged[i:min(len(logged), i+2000)])
	}
}

// fingerprint is the state a bad input must not change: the totals of
// every listing and the last sequence of every event stream.
func (r *badRig) fingerprint(t *testing.T, s *badServer) map[string]uint64 {
	t.Helper()
	fp := map[string]uint64{}
	for _, list := range []string{"tasks", "workflows", "jobs", "artifacts", "proplets", "tokens", "secrets", "devices"} {
		var page struct{ Total uint64 }
		r.mustDo(t, s, "", "GET", "/"+list+"?limit=1", "", &page)
		fp[list] = page.Total
	}
	for _, k := range events.Kinds() {
		st, err := s.js.Stream(context.Background(), k.Stream())
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fp["stream:"+k.Stream()] = info.State.LastSeq
	}
	return fp
}

// settle is how long the state must stay the same after a row that
// changed it before the next row runs.
const settle = 300 * time.Millisecond

// checkUnchanged fails when a key the row does not declare changed. After
// a row that changed something it waits for the state to settle, so that
// the next row starts from a still one.
func (r *badRig) checkUnchanged(t *testing.T, s *badServer, before map[string]uint64, changes []string) {
	t.Helper()
	after := r.fingerprint(t, s)
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if after[k] != before[k] && !slices.Contains(changes, k) {
			t.Errorf("%s changed: %d, was %d", k, after[k], before[k])
		}
	}
	if len(changes) == 0 {
		return
	}
	settled := time.Now()
	natstest.CheckFor(t, 30*time.Second, func() error {
		cur := r.fingerprint(t, s)
		switch {
		case !maps.Equal(cur, after):
			after, settled = cur, time.Now()
			return errors.New("the state still changes")
		case time.Since(settled) < settle:
			return fmt.Errorf("the state unchanged for %s, want %s", time.Since(settled), settle)
		}
		return nil
	})
}
