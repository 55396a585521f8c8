package natsserver

import (
	"fmt"
	"log/slog"
)

// logger adapts nats-server's Logger to slog. The server's notices (its
// start-up banner, listeners) are debug messages to us: jetprop prints its
// own summary; warnings and errors stay.
type logger struct{ l *slog.Logger }

func (g *logger) Noticef(f string, v ...any) { g.l.Debug(fmt.Sprintf(f, v...)) }
func (g *logger) Warnf(f string, v ...any)   { g.l.Warn(fmt.Sprintf(f, v...)) }
func (g *logger) Errorf(f string, v ...any)  { g.l.Error(fmt.Sprintf(f, v...)) }
func (g *logger) Fatalf(f string, v ...any)  { g.l.Error(fmt.Sprintf(f, v...)) }
func (g *logger) Debugf(f string, v ...any)  { g.l.Debug(fmt.Sprintf(f, v...)) }
func (g *logger) Tracef(f string, v ...any)  { g.l.Debug(fmt.Sprintf(f, v...)) }
