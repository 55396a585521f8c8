package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// eventQuery is what GET /events was asked: ?from=N (a stream sequence,
// applied to every kind's stream), ?follow=true, ?kind=task,dev.
type eventQuery struct {
	from   uint64
	follow bool
	kinds  []events.Kind
	named  bool // the kinds were asked for with ?kind
}

func parseEventQuery(r *http.Request) (eventQuery, error) {
	q := r.URL.Query()
	eq := eventQuery{kinds: events.Kinds()}
	var err error
	if s := q.Get("from"); s != "" {
		if eq.from, err = strconv.ParseUint(s, 10, 64); err != nil {
			return eq, badRequest("from %q: want a stream sequence (a whole number)", s)
		}
	}
	if s := q.Get("follow"); s != "" {
		if eq.follow, err = strconv.ParseBool(s); err != nil {
			return eq, badRequest("follow %q: want true or false", s)
		}
	}
	if s := q.Get("kind"); s != "" {
		if eq.kinds, err = parseKinds(s); err != nil {
			return eq, err
		}
		eq.named = true
	}
	return eq, nil
}

func parseKinds(s string) ([]events.Kind, error) {
	var out []events.Kind
	for name := range strings.SplitSeq(s, ",") {
		k := events.Kind(strings.TrimSpace(name))
		if !slices.Contains(events.Kinds(), k) {
			return nil, badRequest("kind %q: want one of %v", k, events.Kinds())
		}
		out = append(out, k)
	}
	return out, nil
}

// events streams envelopes as newline-delimited JSON: every kind's stored
// events, a stream at a time, then, with follow, new events of all kinds as
// they come. A failure after the stream began ends it with an
// {"error": ...} line.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventQuery(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if q, err = a.visible(r, q); err != nil {
		forbidden(w, err)
		return
	}
	out := newLineWriter(w)
	out.start()
	write := a.untilRevoked(r, out.write)
	next, err := a.replay(r.Context(), q, write)
	if err == nil && q.follow {
		err = a.follow(r.Context(), next, write)
	}
	if err != nil && r.Context().Err() == nil && !errors.Is(err, errRevoked) {
		a.log.Error("event stream failed", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyErr, err)
		_ = out.write(Error{Error: "event stream failed"})
	}
}

// errRevoked ends an event stream whose token was revoked.
var errRevoked = fmt.Errorf("%w: the token of this stream was revoked", domain.ErrUnauthenticated)

// untilRevoked wraps write so that a stream ends, with an error line, at
// the first event after the token it was opened with is revoked: a
// followed stream outlives the request that checked the token.
func (a *api) untilRevoked(r *http.Request, write func(any) error) func(any) error {
	t, ok := caller(r)
	if !ok {
		return write
	}
	return func(v any) error {
		if cur, err := a.svc.GetToken(t.ID); err != nil || !cur.Active() {
			_ = write(Error{Error: errRevoked.Error()})
			return errRevoked
		}
		return write(v)
	}
}

// adminOnly are the kinds of events shown to admin tokens only: access
// management (tokens) and secrets (sealed, but an admin's to manage).
var adminOnly = []events.Kind{events.KindToken, events.KindSecret}

// visible leaves the adminOnly events out of what a token that is not an
// admin's is shown; asking for them by name with such a token is
// forbidden.
func (a *api) visible(r *http.Request, q eventQuery) (eventQuery, error) {
	if a.mayManageAccess(r) {
		return q, nil
	}
	held := func(k events.Kind) bool { return slices.Contains(adminOnly, k) }
	i := slices.IndexFunc(q.kinds, held)
	switch {
	case i < 0:
		return q, nil
	case q.named:
		return q, fmt.Errorf("%w: the %s events are shown to admin tokens only", domain.ErrForbidden, q.kinds[i])
	}
	q.kinds = slices.DeleteFunc(slices.Clone(q.kinds), held)
	return q, nil
}

// replay writes the stored events of every kind and returns, per kind, the
// sequence to follow from.
func (a *api) replay(ctx context.Context, q eventQuery, write func(any) error) (map[events.Kind]uint64, error) {
	next := make(map[events.Kind]uint64, len(q.kinds))
	for _, k := range q.kinds {
		next[k] = max(q.from, 1)
		err := a.store.Replay(ctx, k, q.from, func(e events.Envelope) error {
			next[k] = e.Seq + 1
			return write(e)
		})
		if err != nil {
			return nil, err
		}
	}
	return next, nil
}

// follow subscribes to every kind from its next sequence and merges the
// subscriptions into one writer; it returns when the client goes away or a
// subscription fails.
func (a *api) follow(ctx context.Context, next map[events.Kind]uint64, write func(any) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	merged := make(chan events.Envelope)
	failed := make(chan error, len(next))
	for k, from := range next {
		wg.Go(func() { failed <- a.store.Subscribe(ctx, k, from, forward(ctx, merged)) })
	}
	for {
		select {
		case e := <-merged:
			if err := write(e); err != nil {
				return nil // the client went away
			}
		case err := <-failed:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

func forward(ctx context.Context, to chan<- events.Envelope) func(events.Envelope) error {
	return func(e events.Envelope) error {
		select {
		case to <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lineWriter writes one JSON value a line and flushes it at once.
type lineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newLineWriter(w http.ResponseWriter) *lineWriter {
	return &lineWriter{w: w, rc: http.NewResponseController(w)}
}

// start sends the headers at once, so a client following a quiet stream
// knows it is connected.
func (l *lineWriter) start() {
	l.w.Header().Set("Content-Type", "application/x-ndjson")
	l.w.WriteHeader(http.StatusOK)
	_ = l.rc.SetWriteDeadline(time.Time{}) // a followed stream outlives the server's write timeout
	_ = l.flush()                          // a failure shows at the first write
}

func (l *lineWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return l.flush()
}

// flush sends what was written; a writer that cannot flush sends it later.
func (l *lineWriter) flush() error {
	if err := l.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
