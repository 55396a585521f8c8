package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// Retry defaults: how often and how long a request that is safe to repeat
// is sent again after a 503 or a connection error.
const (
	DefaultRetryAttempts = 6
	DefaultRetryFor      = 30 * time.Second
	// retryBase and retryCap bound the backoff: a delay drawn at random
	// from [0, min(retryCap, retryBase·2ⁿ)) ("full jitter"), and never
	// shorter than the server's Retry-After.
	retryBase = 200 * time.Millisecond
	retryCap  = 5 * time.Second
)

// retryPolicy is how a client retries.
type retryPolicy struct {
	attempts int           // sends in all, the first one included; 1: no retries
	total    time.Duration // no retry starts later than this after the first send
}

var defaultRetry = retryPolicy{attempts: DefaultRetryAttempts, total: DefaultRetryFor}

// WithRetry sends a request that is safe to repeat at most attempts times
// in all, and starts no new attempt more than total after the first:
// after a 503 (waiting at least its Retry-After) or a connection error,
// with exponential backoff and jitter between. Safe to repeat are GET and
// HEAD and requests with an Idempotency-Key (every create of this
// client). attempts 1 or less turns retries off; total 0 keeps
// DefaultRetryFor.
func WithRetry(attempts int, total time.Duration) Option {
	return func(c *Client) {
		c.retry = retryPolicy{attempts: max(attempts, 1), total: total}
		if total <= 0 {
			c.retry.total = DefaultRetryFor
		}
	}
}

type keyCtx struct{}

// WithIdempotencyKey returns a context whose create (CreateTask,
// CreateWorkflow) sends key as its Idempotency-Key instead of
// one the client makes up: a caller that keeps its key can repeat a create
// even after it restarted, and get the same task.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// idempotencyKey is the key ctx carries, or a new random one.
func idempotencyKey(ctx context.Context) string {
	if k, ok := ctx.Value(keyCtx{}).(string); ok && k != "" {
		return k
	}
	b := make([]byte, 16)
	_, _ = crand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// safeToRepeat reports whether req may be sent again: a read, or a write
// with an idempotency key whose body can be sent again.
func safeToRepeat(req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	return req.Header.Get(httpapi.HeaderIdempotencyKey) != "" && (req.Body == nil || req.GetBody != nil)
}

// roundTrip sends req, and again under the client's retry policy while
// the server answers 503 or cannot be reached.
func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	if c.retry.attempts <= 1 || !safeToRepeat(req) {
		return c.hc.Do(req)
	}
	deadline := time.Now().Add(c.retry.total)
	for attempt := 1; ; attempt++ {
		resp, err := c.hc.Do(req)
		wait, again := retryDelay(req.Context(), attempt, resp, err)
		if !again || attempt >= c.retry.attempts || time.Now().Add(wait).After(deadline) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

// retryDelay says whether an attempt's outcome is worth another, and how
// long to wait first.
func retryDelay(ctx context.Context, attempt int, resp *http.Response, err error) (time.Duration, bool) {
	switch {
	case ctx.Err() != nil:
		return 0, false
	case err != nil: // no answer: refused, reset, or lost on the way
		return backoff(attempt), true
	case resp.StatusCode != http.StatusServiceUnavailable:
		return 0, false
	}
	return max(backoff(attempt), retryAfter(resp.Header.Get("Retry-After"))), true
}

// backoff is a random delay up to retryBase·2^(attempt-1), capped.
func backoff(attempt int) time.Duration {
	ceiling := min(retryCap, retryBase<<min(attempt-1, 16))
	return rand.N(ceiling) + time.Millisecond
}

// retryAfter reads a Retry-After in seconds or as an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rewind returns req ready to be sent again, with its body from the start.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.GetBody == nil {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("%s %s: rewind the body to retry: %w", req.Method, req.URL.Path, err)
	}
	next := req.Clone(req.Context())
	next.Body = body
	return next, nil
}
