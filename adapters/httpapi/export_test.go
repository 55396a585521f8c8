package httpapi

import "net/http"

// RouteAccess is a route of the table and the access it declares.
type RouteAccess struct {
	Pattern string
	Access  string // public, viewer, operator or admin
}

// Routes returns the route table of an API that New returned.
func Routes(h http.Handler) []RouteAccess {
	var out []RouteAccess
	for _, rt := range h.(*api).table {
		out = append(out, RouteAccess{Pattern: rt.pattern, Access: rt.access.String()})
	}
	return out
}
