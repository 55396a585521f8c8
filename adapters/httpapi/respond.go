package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// errBadRequest marks a malformed request: bad JSON, a bad query parameter.
var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// statusOf maps an error to its HTTP status; 500 for anything unexpected.
func statusOf(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, domain.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, domain.ErrForbidden):
		return http.StatusForbidden
	case errors.As(err, &tooBig), errors.Is(err, domain.ErrTooLarge), errors.Is(err, events.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, domain.ErrDenied):
		return http.StatusForbidden
	case errors.Is(err, domain.ErrUpstream):
		return http.StatusBadGateway
	case errors.Is(err, domain.ErrTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, domain.ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrModuleNotFound):
		return http.StatusNotFound
	case errors.Is(err, domain.ErrExists), errors.Is(err, domain.ErrInvalidState),
		errors.Is(err, domain.ErrNoDevice), errors.Is(err, events.ErrConflict),
		errors.Is(err, domain.ErrQuarantined):
		return http.StatusConflict
	case errors.Is(err, domain.ErrInvalid), errors.Is(err, domain.ErrNotWasm),
		errors.Is(err, events.ErrInvalidID), errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, domain.ErrKeyReused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, domain.ErrUnavailable), events.Unavailable(err):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// RetryAfter is the Retry-After of a 503: about a JetStream leader
// election, and long enough for a read model to catch up.
const RetryAfter = 2 * time.Second

// fail answers with err's status; a server fault is logged and its detail
// kept out of the answer.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && !errors.Is(err, errBodyTimeout) { // a read timeout ends the context too
		return // the client went away: nobody to answer, nothing wrong here
	}
	status := statusOf(err)
	msg := err.Error()
	switch status {
	case http.StatusInternalServerError:
		a.log.Error("request failed", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyErr, err)
		msg = "internal server error"
	case http.StatusServiceUnavailable:
		a.log.Warn("request failed, may be retried", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyErr, err)
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
		if !errors.Is(err, domain.ErrUnavailable) {
			msg = fmt.Sprintf("%v: %v", domain.ErrUnavailable, err)
		}
	}
	if q, ok := errors.AsType[*events.QuarantineError](err); ok {
		writeJSON(w, status, Error{Error: msg + "; " + QuarantineHint, Quarantined: &q.Record})
		return
	}
	writeError(w, status, msg)
}

// QuarantineHint ends the message of a command refused because its
// aggregate is quarantined.
const QuarantineHint = "inspect it with 'jetprop events doctor' or GET /events/quarantine"

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing left to tell it
}

// decodeJSON reads exactly one JSON value into v, refusing unknown fields.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonErr(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return badRequest("unexpected data after the JSON body")
	}
	return nil
}

func jsonErr(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTimeout):
		return err
	case errors.As(err, &tooBig):
		return fmt.Errorf("request body larger than %d bytes: %w", tooBig.Limit, err)
	case errors.Is(err, io.EOF):
		return badRequest("empty body: want a JSON object")
	}
	return badRequest("invalid JSON body: %v", err)
}

// Page limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

type page struct{ offset, limit int }

// parsePage reads ?offset and ?limit.
func parsePage(r *http.Request) (page, error) {
	p := page{limit: DefaultLimit}
	q := r.URL.Query()
	var err error
	if s := q.Get("offset"); s != "" {
		if p.offset, err = strconv.Atoi(s); err != nil || p.offset < 0 {
			return p, badRequest("offset %q: want a whole number >= 0", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		if p.limit, err = strconv.Atoi(s); err != nil || p.limit < 1 || p.limit > MaxLimit {
			return p, badRequest("limit %q: want a whole number from 1 to %d", s, MaxLimit)
		}
	}
	return p, nil
}

// Hints of a 413 on a JSON body that may carry modules inline: where a
// module larger than MaxInlineModule goes instead.
var (
	hintTaskModule = fmt.Sprintf("JSON bodies are limited to %d bytes (MaxJSONBody), modules inline to %d: "+
		"create the task without \"file\" and stream the module with PUT /tasks/{id}/upload (jetprop task upload), "+
		"or push it with POST /artifacts?name=NAME:TAG (jetprop artifact push) and give image_url", MaxJSONBody, MaxInlineModule)
	hintStepModules = fmt.Sprintf("JSON bodies are limited to %d bytes (MaxJSONBody), modules inline to %d: "+
		"push modules with POST /artifacts?name=NAME:TAG (jetprop artifact push) and name them in image_url", MaxJSONBody, MaxInlineModule)
)

// jsonLimit is the limit of a JSON body: MaxJSONBody, or the upload limit
// when WithMaxBody set a smaller one.
func (a *api) jsonLimit() int64 { return min(a.maxBody, MaxJSONBody) }

// decodeBody decodes a JSON body of at most jsonLimit bytes into v; a
// body over it is refused with hint.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, hint string, v any) error {
	err := limitBody(w, r, a.jsonLimit())
	if err == nil {
		err = decodeJSON(r.Body, v)
	}
	return withHint(err, hint)
}

// limitBody bounds r's body to limit bytes. A body that declares a larger
// Content-Length is refused before a byte of it is read (a client that
// sent Expect: 100-continue never sends it); one that does not is cut at
// the limit by the reader.
func limitBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return nil
}

// withHint adds hint to an error of a body over its limit.
func withHint(err error, hint string) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return fmt.Errorf("%w; %s", err, hint)
	}
	return err
}
