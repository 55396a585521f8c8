package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// WithAuth makes every route but GET /health require a bearer token
// (Authorization: Bearer jpt_...) whose role is at least the route's:
// 401 without one or with one that is malformed, unknown or revoked, 403
// when its role is too weak. Without WithAuth the API is open (dev mode):
// no token is asked for, and a token sent is not looked at.
func WithAuth() Option {
	return func(a *api) { a.auth = true }
}

// access is what a route requires: nothing (public) or a role.
type access struct {
	public bool
	role   domain.Role
}

// The accesses a route may declare. Reads are viewer, writes operator,
// access management (tokens, devices) admin; only GET /health is public.
var (
	public   = access{public: true}
	viewer   = access{role: domain.RoleViewer}
	operator = access{role: domain.RoleOperator}
	admin    = access{role: domain.RoleAdmin}
)

func (x access) valid() bool { return x.public != x.role.Valid() }

func (x access) String() string {
	if x.public {
		return "public"
	}
	return string(x.role)
}

// route is one entry of the route table: a pattern of http.ServeMux, what
// it requires, and its handler.
type route struct {
	pattern string
	access  access
	handler http.HandlerFunc
}

// handle registers rt behind the access check. A route that declares no
// access is a programming error: New panics, so every test that builds
// the API fails.
func (a *api) handle(rt route) {
	if !rt.access.valid() {
		panic(fmt.Sprintf("httpapi: route %q declares no access (public, viewer, operator or admin)", rt.pattern))
	}
	a.table = append(a.table, rt)
	a.mux.Handle(rt.pattern, a.guard(rt))
}

// guard checks the request's token against the route's access.
func (a *api) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.auth || rt.access.public {
			rt.handler(w, r)
			return
		}
		tok, err := a.authenticate(r)
		if err != nil {
			unauthorized(w, err)
			return
		}
		if !tok.Role.AtLeast(rt.access.role) {
			forbidden(w, fmt.Errorf("%w: token %q is %s; %s %s needs %s", domain.ErrForbidden, tok.Name, tok.Role, r.Method, r.URL.Path, rt.access.role))
			return
		}
		rt.handler(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, tok)))
	})
}

// errNoToken is a request without an Authorization header.
var errNoToken = fmt.Errorf("%w: missing bearer token (send Authorization: Bearer <token>; jetprop's CLI reads JETPROP_TOKEN)", domain.ErrUnauthenticated)

// authenticate returns the active token the request's Authorization
// header carries.
func (a *api) authenticate(r *http.Request) (engine.Token, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return engine.Token{}, errNoToken
	}
	scheme, secret, _ := strings.Cut(values[0], " ")
	secret = strings.TrimSpace(secret)
	if len(values) > 1 || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return engine.Token{}, fmt.Errorf("%w: malformed Authorization header (want Bearer <token>)", domain.ErrUnauthenticated)
	}
	return a.svc.Authenticate(secret)
}

// unauthorized answers 401 with the challenge of RFC 6750: a bad token is
// an invalid_token, a missing one gets the bare challenge.
func unauthorized(w http.ResponseWriter, err error) {
	challenge := `Bearer realm="jetprop"`
	if !errors.Is(err, errNoToken) {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, err.Error())
}

// forbidden answers 403 for a token whose role is too weak.
func forbidden(w http.ResponseWriter, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="jetprop", error="insufficient_scope"`)
	writeError(w, http.StatusForbidden, err.Error())
}

type callerKey struct{}

// caller returns the token a request was authenticated with; ok is false
// in dev mode and on public routes.
func caller(r *http.Request) (engine.Token, bool) {
	t, ok := r.Context().Value(callerKey{}).(engine.Token)
	return t, ok
}

// callerID is the id of the request's token, "" when there is none.
func callerID(r *http.Request) string {
	t, _ := caller(r)
	return t.ID
}

// mayManageAccess reports whether the request may see access management
// data (the token events of GET /events): always in dev mode, else with
// an admin token.
func (a *api) mayManageAccess(r *http.Request) bool {
	t, ok := caller(r)
	return !a.auth || ok && t.Role.AtLeast(domain.RoleAdmin)
}
