// Package client is a Go client of jetprop's HTTP API (package httpapi).
// Every method takes a context; an answer with an error status comes back
// as an *Error holding the status and the server's message.
//
// Requests that are safe to repeat are retried: reads (GET), and creates
// (CreateTask, CreateWorkflow), which send an Idempotency-Key the client
// makes up per call (or the caller's, WithIdempotencyKey), so a create
// sent twice still makes one task. They are sent again after a 503 (the
// server's event store is electing a leader, or its read model is behind;
// never sooner than its Retry-After) and after a connection error, with
// exponential backoff and jitter, at most DefaultRetryAttempts times in
// DefaultRetryFor (WithRetry changes both or turns retries off). Other
// writes (start, stop, delete, uploads) are sent once: a repeat could act
// twice.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/events"
)

// Error is an answer with an error status.
type Error struct {
	StatusCode int
	Message    string // the server's {"error": ...}, or the status text
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode) }

// StatusCode returns the HTTP status of an *Error in err's chain, 0 if none.
func StatusCode(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.StatusCode
	}
	return 0
}

// Client talks to one jetprop server.
type Client struct {
	base  string
	hc    *http.Client
	token string // sent as Authorization: Bearer <token> when not empty
	retry retryPolicy
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token (an API token, "jpt_...") with every request as
// Authorization: Bearer <token>. Surrounding white space (a token read
// from a file ends in a newline) is dropped; an empty token sends none.
func WithToken(token string) Option {
	return func(c *Client) { c.token = strings.TrimSpace(token) }
}

// New returns a client of the API at baseURL (such as
// "http://127.0.0.1:7070"). A nil httpClient uses a client without a
// timeout: waits and event streams last as long as their context.
func New(baseURL string, httpClient *http.Client, opts ...Option) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: httpClient, retry: defaultRetry}
	for _, o := range opts {
		o(c)
	}
	return c
}

// newRequest makes a request to the API, with the token when there is one.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// NewTLS returns a client of the API at an https baseURL whose TLS is
// cfg: a private CA in RootCAs, a client certificate. It is New with an
// http.Client on a copy of http.DefaultTransport (proxies from the
// environment, HTTP/2) that uses cfg.
func NewTLS(baseURL string, cfg *tls.Config, opts ...Option) *Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	return New(baseURL, &http.Client{Transport: t}, opts...)
}

// Health asks GET /health.
func (c *Client) Health(ctx context.Context) (httpapi.Health, error) {
	var h httpapi.Health
	return h, c.do(ctx, http.MethodGet, "/health", nil, &h)
}

// Quarantine asks GET /events/quarantine: the quarantined aggregates and
// the event streams found damaged at start.
func (c *Client) Quarantine(ctx context.Context) (httpapi.QuarantineReport, error) {
	var r httpapi.QuarantineReport
	return r, c.do(ctx, http.MethodGet, "/events/quarantine", nil, &r)
}

// InboundStats asks GET /inbound/stats: what the server did with device
// messages, ignored ones by reason.
func (c *Client) InboundStats(ctx context.Context) (httpapi.InboundStats, error) {
	var s httpapi.InboundStats
	return s, c.do(ctx, http.MethodGet, "/inbound/stats", nil, &s)
}

// CreateTask creates a task, once however often it is retried (see the
// package's doc). A module in req.File larger than the server takes in a
// JSON body (httpapi.MaxInlineModule) is streamed after the create, by
// UploadModule.
func (c *Client) CreateTask(ctx context.Context, req httpapi.TaskRequest) (httpapi.Task, error) {
	var t httpapi.Task
	module := req.File
	upload := len(module) > httpapi.MaxInlineModule
	if upload {
		req.File = nil
	}
	if err := c.create(ctx, "/tasks", req, &t); err != nil || !upload {
		return t, err
	}
	return c.UploadModule(ctx, t.ID, bytes.NewReader(module))
}

// GetTask returns one task.
func (c *Client) GetTask(ctx context.Context, id string) (httpapi.Task, error) {
	var t httpapi.Task
	return t, c.do(ctx, http.MethodGet, taskPath(id, ""), nil, &t)
}

// ListTasks returns a page of tasks; limit 0 asks for the server's default.
func (c *Client) ListTasks(ctx context.Context, offset, limit int) (httpapi.TaskList, error) {
	var l httpapi.TaskList
	return l, c.do(ctx, http.MethodGet, "/tasks"+pageQuery(offset, limit), nil, &l)
}

// ListTasksWithMetadata returns a page of the tasks whose metadata holds
// every key of meta with its value (GET /tasks?metadata=key:value).
func (c *Client) ListTasksWithMetadata(ctx context.Context, offset, limit int, meta map[string]string) (httpapi.TaskList, error) {
	q := url.Values{}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		q.Add("metadata", k+":"+meta[k])
	}
	path := "/tasks" + pageQuery(offset, limit)
	switch {
	case len(q) > 0 && strings.Contains(path, "?"):
		path += "&" + q.Encode()
	case len(q) > 0:
		path += "?" + q.Encode()
	}
	var l httpapi.TaskList
	return l, c.do(ctx, http.MethodGet, path, nil, &l)
}

// StartTask places the task's next attempt on a proplet.
func (c *Client) StartTask(ctx context.Context, id string) (httpapi.Task, error) {
	var t httpapi.Task
	return t, c.do(ctx, http.MethodPost, taskPath(id, "/start"), nil, &t)
}

// StopTask stops a scheduled or running task.
func (c *Client) StopTask(ctx context.Context, id string) (httpapi.Task, error) {
	var t httpapi.Task
	return t, c.do(ctx, http.MethodPost, taskPath(id, "/stop"), nil, &t)
}

// DeleteTask deletes a task that is not running.
func (c *Client) DeleteTask(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, taskPath(id, ""), nil, nil)
}

// Results returns the task's result. A positive wait asks the server to
// answer once the task has finished or wait has passed (the server caps
// it at httpapi.MaxWait); check Results.Terminal.
func (c *Client) Results(ctx context.Context, id string, wait time.Duration) (httpapi.Results, error) {
	path := taskPath(id, "/results")
	if wait > 0 {
		path += "?wait=" + url.QueryEscape(wait.String())
	}
	var r httpapi.Results
	return r, c.do(ctx, http.MethodGet, path, nil, &r)
}

// ListProplets returns a page of proplets; limit 0 asks for the server's default.
func (c *Client) ListProplets(ctx context.Context, offset, limit int) (httpapi.PropletList, error) {
	var l httpapi.PropletList
	return l, c.do(ctx, http.MethodGet, "/proplets"+pageQuery(offset, limit), nil, &l)
}

// GetProplet returns one proplet.
func (c *Client) GetProplet(ctx context.Context, id string) (httpapi.Proplet, error) {
	var p httpapi.Proplet
	return p, c.do(ctx, http.MethodGet, "/proplets/"+url.PathEscape(id), nil, &p)
}

func taskPath(id, action string) string { return "/tasks/" + url.PathEscape(id) + action }

func pageQuery(offset, limit int) string {
	q := url.Values{}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// do sends body (JSON-encoded unless nil) and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doKeyed(ctx, method, path, "", body, out)
}

// create POSTs body under an Idempotency-Key: ctx's, or a new one.
func (c *Client) create(ctx context.Context, path string, body, out any) error {
	return c.doKeyed(ctx, http.MethodPost, path, idempotencyKey(ctx), body, out)
}

// doKeyed is do with an Idempotency-Key when key is not empty.
func (c *Client) doKeyed(ctx context.Context, method, path, key string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := c.jsonRequest(ctx, method, path, "application/json", r)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set(httpapi.HeaderIdempotencyKey, key)
	}
	resp, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeAnswer(resp, out)
}

// send makes a request and returns the answer of any status.
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := c.jsonRequest(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(req)
}

// jsonRequest is newRequest with contentType when there is a body.
func (c *Client) jsonRequest(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Request, error) {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

func decodeAnswer(resp *http.Response, out any) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorFrom(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

func errorFrom(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e httpapi.Error
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return &Error{StatusCode: resp.StatusCode, Message: e.Error}
	}
	msg := http.StatusText(resp.StatusCode)
	if s := strings.TrimSpace(string(b)); s != "" {
		msg += ": " + s
	}
	return &Error{StatusCode: resp.StatusCode, Message: msg}
}

// UploadModule streams module as the multipart field "file" to the task.
func (c *Client) UploadModule(ctx context.Context, id string, module io.Reader) (httpapi.Task, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(writeForm(mw, module))
	}()
	resp, err := c.send(ctx, http.MethodPut, taskPath(id, "/upload"), mw.FormDataContentType(), pr)
	pr.CloseWithError(errors.New("upload: request ended")) // stops the writer if the server answered early
	<-done
	if err != nil {
		return httpapi.Task{}, err
	}
	defer resp.Body.Close()
	var t httpapi.Task
	return t, decodeAnswer(resp, &t)
}

func writeForm(mw *multipart.Writer, module io.Reader) error {
	part, err := mw.CreateFormFile("file", "module.wasm")
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, module); err != nil {
		return err
	}
	return mw.Close()
}

// Events calls fn for every stored event, then, with follow, for new ones
// until ctx is done (then it returns nil) or fn returns an error.
func (c *Client) Events(ctx context.Context, follow bool, fn func(events.Envelope) error) error {
	return c.EventsFrom(ctx, 0, follow, fn)
}

// EventsFrom is Events starting at stream sequence from in every stream.
func (c *Client) EventsFrom(ctx context.Context, from uint64, follow bool, fn func(events.Envelope) error) error {
	q := url.Values{"follow": {strconv.FormatBool(follow)}}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	resp, err := c.send(ctx, http.MethodGet, "/events?"+q.Encode(), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorFrom(resp)
	}
	err = readLines(resp.Body, fn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// streamLine is one line of GET /events: an envelope, or a final error.
type streamLine struct {
	events.Envelope
	Error string `json:"error"`
}

func readLines(r io.Reader, fn func(events.Envelope) error) error {
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			if ferr := handleLine(b, fn); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("event stream: %w", err)
		}
	}
}

func handleLine(b []byte, fn func(events.Envelope) error) error {
	var l streamLine
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("event stream: bad line: %w", err)
	}
	if l.Error != "" {
		return &Error{StatusCode: http.StatusInternalServerError, Message: l.Error}
	}
	return fn(l.Envelope)
}

// ProvisionDevice provisions a device and returns it with its key (shown
// this once).
func (c *Client) ProvisionDevice(ctx context.Context, id string, legacy bool) (httpapi.Device, error) {
	var d httpapi.Device
	return d, c.do(ctx, http.MethodPost, "/devices", httpapi.ProvisionRequest{ID: id, Legacy: legacy}, &d)
}

// ListDevices returns a page of devices.
func (c *Client) ListDevices(ctx context.Context, offset, limit int) (httpapi.DeviceList, error) {
	var l httpapi.DeviceList
	return l, c.do(ctx, http.MethodGet, "/devices"+pageQuery(offset, limit), nil, &l)
}

// RevokeDevice cuts a device off.
func (c *Client) RevokeDevice(ctx context.Context, id, reason string) (httpapi.Device, error) {
	var d httpapi.Device
	return d, c.do(ctx, http.MethodPost, "/devices/"+url.PathEscape(id)+"/revoke", httpapi.RevokeRequest{Reason: reason}, &d)
}
