package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
)

// Header names of idempotent creates.
const (
	// HeaderIdempotencyKey carries a client's key on a create (POST
	// /tasks, /workflows, /jobs): the same key again gives the same
	// aggregate, never a second one.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayed is "true" on the answer to a create whose key had
	// created its aggregate already.
	HeaderReplayed = "Idempotent-Replayed"
)

// MaxKeyLength bounds an Idempotency-Key.
const MaxKeyLength = 255

// idempotencyKey reads the request's Idempotency-Key, scoped to its
// caller; a zero key when there is none. The key is visible ASCII, as a
// bare token (Stripe's form) or a quoted string (the IETF draft's).
func idempotencyKey(r *http.Request) (service.Key, error) {
	values := r.Header.Values(HeaderIdempotencyKey)
	if len(values) == 0 {
		return service.Key{}, nil
	}
	v := strings.TrimSpace(values[0])
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	switch {
	case len(values) > 1:
		return service.Key{}, badRequest("send one %s header, not %d", HeaderIdempotencyKey, len(values))
	case v == "" || len(v) > MaxKeyLength:
		return service.Key{}, badRequest("%s must be 1 to %d characters", HeaderIdempotencyKey, MaxKeyLength)
	case strings.IndexFunc(v, func(c rune) bool { return c < 0x21 || c > 0x7e || c == '"' }) >= 0:
		return service.Key{}, badRequest("%s %q: want visible ASCII characters only (a UUID, say)", HeaderIdempotencyKey, v)
	}
	return service.Key{Caller: callerID(r), Value: v}, nil
}

// created answers a create: 201 with Location and the body, and
// Idempotent-Replayed when the key had created it already. A create
// whose write is stored but that the read model did not show in time
// (domain.ErrBehind) answers 202 with the state as written: it did
// create, and a client without a key must not be led to send it again.
func (a *api) created(w http.ResponseWriter, r *http.Request, path, id string, replayed bool, body any, err error) {
	status := http.StatusCreated
	switch {
	case err != nil && id != "" && errors.Is(err, domain.ErrBehind):
		status = http.StatusAccepted
	case err != nil:
		a.fail(w, r, err)
		return
	}
	if replayed {
		w.Header().Set(HeaderReplayed, "true")
	}
	w.Header().Set("Location", path+url.PathEscape(id))
	writeJSON(w, status, body)
}
