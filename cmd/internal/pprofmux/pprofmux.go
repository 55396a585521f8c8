// Package pprofmux is the one set of net/http/pprof routes the commands
// serve behind their --pprof flags (jetprop up/server and the proplet).
package pprofmux

import (
	"net/http"
	"net/http/pprof"
)

// New returns a mux with the runtime profiles under /debug/pprof/.
func New() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
