package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jetprop/jetprop/cmd/internal/pprofmux"
)

// servePprof serves Go's runtime profiles on Config.PprofAddr (loopback,
// Validate checks), until Close.
func (a *App) servePprof() error {
	if a.cfg.PprofAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.PprofAddr)
	if err != nil {
		return fmt.Errorf("pprof: listen on %s: %w", a.cfg.PprofAddr, err)
	}
	a.pprofLn = ln
	a.pprofSrv = &http.Server{Handler: pprofmux.New(), ReadHeaderTimeout: 10 * time.Second}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.pprofSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("pprof server", "err", err)
		}
	}()
	a.log.Info("serving runtime profiles", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}

// PprofURL is where the runtime profiles are served ("" when they are not).
func (a *App) PprofURL() string {
	if a.pprofLn == nil {
		return ""
	}
	return "http://" + a.pprofLn.Addr().String() + "/debug/pprof/"
}
