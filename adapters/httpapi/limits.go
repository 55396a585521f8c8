package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Limits bounds what one client may hold of the server: how long it may
// take to send a request's body, how long the answer may take to be
// written, and how many requests it may have in flight (WithLimits). The
// http.Server that serves the API is given ReadTimeout and WriteTimeout
// too, and its own read-header and idle timeouts.
type Limits struct {
	// ReadTimeout is the time a request's body may take, plus one second
	// for every MinReadRate bytes received: a large upload at a
	// reasonable rate always fits, a body trickled byte by byte is cut
	// after about ReadTimeout (408).
	ReadTimeout time.Duration
	MinReadRate int64 // bytes per second
	// WriteTimeout is the time an answer may take to be written, counted
	// from the end of the body. Long polls (?wait=), event streams and
	// module downloads set their own.
	WriteTimeout time.Duration
	// PerClient bounds the requests one client has in flight; more are
	// answered 429 with Retry-After. A client is the token a request
	// carries when it is a valid one (WithAuth), else the remote IP
	// address. GET /health is not counted.
	PerClient int
}

// Defaults of Limits, the flags of jetprop up and server.
const (
	DefaultReadTimeout  = 30 * time.Second
	DefaultMinReadRate  = 64 << 10 // 512 kbit/s: a 100 MiB module in under half an hour
	DefaultWriteTimeout = time.Minute
	DefaultPerClient    = 64
)

// DefaultLimits are the limits jetprop's server runs with unless told
// otherwise.
func DefaultLimits() Limits {
	return Limits{ReadTimeout: DefaultReadTimeout, MinReadRate: DefaultMinReadRate, WriteTimeout: DefaultWriteTimeout, PerClient: DefaultPerClient}
}

// Validate checks that every limit is set.
func (l Limits) Validate() error {
	switch {
	case l.ReadTimeout <= 0, l.WriteTimeout <= 0:
		return errors.New("read and write timeouts must be positive")
	case l.MinReadRate <= 0:
		return errors.New("the minimum read rate must be positive")
	case l.PerClient < 1:
		return errors.New("the requests per client must be at least 1")
	}
	return nil
}

// WithLimits enforces l on every request (see Limits); without it the
// API leaves time to the http.Server and counts no client.
func WithLimits(l Limits) Option {
	return func(a *api) {
		a.limits = &l
		a.clients = &clientCount{max: l.PerClient, n: map[string]int{}}
	}
}

// RetryAfterBusy is the Retry-After of a 429.
const RetryAfterBusy = time.Second

// errBodyTimeout is a body that did not come in time (408).
var errBodyTimeout = errors.New("request body not received in time")

// limit runs next under the client's share and the body's deadlines.
func (a *api) limit(w http.ResponseWriter, r *http.Request, pattern string, next func(http.ResponseWriter, *http.Request)) {
	if a.limits == nil {
		next(w, r)
		return
	}
	if pattern != "GET /health" {
		key := a.clientKey(r)
		if !a.clients.acquire(key) {
			w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfterBusy/time.Second)))
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many requests in flight from this client (%s): the limit is %d at once (--http-max-per-client)", key, a.limits.PerClient))
			return
		}
		defer a.clients.release(key)
	}
	a.deadlines(w, r)
	next(w, r)
}

// deadlines gives a request with a body a read deadline that grows with
// what it sends, and a write deadline that follows it. A request without
// one keeps the server's: net/http lifts the read deadline once a body
// is read, so that a long poll is not cut by it.
func (a *api) deadlines(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	b := &rateBody{ReadCloser: r.Body, rc: http.NewResponseController(w), l: *a.limits, start: time.Now()}
	b.extend()
	r.Body = b
}

// clientKey names the request's client: its token, when it carries a
// valid one, else its remote address.
func (a *api) clientKey(r *http.Request) string {
	if a.auth {
		if tok, err := a.authenticate(r); err == nil {
			return "token " + tok.ID
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "address " + host
}

// rateBody is a request body whose read deadline is start + ReadTimeout
// + one second per MinReadRate bytes read, and whose write deadline
// follows it by WriteTimeout.
type rateBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	l     Limits
	start time.Time
	n     int64
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if n > 0 {
		b.extend()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %d bytes in %s; a body has %s plus 1s per %d bytes (--http-read-timeout, --http-min-read-rate): %w",
			errBodyTimeout, b.n, time.Since(b.start).Round(time.Second), b.l.ReadTimeout, b.l.MinReadRate, err)
	}
	return n, err
}

func (b *rateBody) extend() {
	deadline := b.start.Add(b.l.ReadTimeout + time.Duration(b.n/b.l.MinReadRate)*time.Second)
	_ = b.rc.SetReadDeadline(deadline)
	_ = b.rc.SetWriteDeadline(deadline.Add(b.l.WriteTimeout))
}

// clientCount counts the requests each client has in flight.
type clientCount struct {
	mu  sync.Mutex
	max int
	n   map[string]int // only clients with requests in flight
}

func (c *clientCount) acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

func (c *clientCount) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}
