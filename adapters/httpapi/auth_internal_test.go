package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestHandle_RouteWithoutAccess: a route that declares no access stops New.
func TestHandle_RouteWithoutAccess(t *testing.T) {
	for _, x := range []access{{}, {public: true, role: admin.role}, {role: "root"}} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "declares no access") {
					t.Fatalf("access %+v: recovered %v", x, r)
				}
			}()
			a := &api{mux: http.NewServeMux()}
			a.handle(route{"GET /new", x, func(http.ResponseWriter, *http.Request) {}})
		}()
	}
}
