package natsserver

import (
	"fmt"
	"log/slog"
)

// logger adapts nats-server's Logger to slog.
type logger struct{ l *slog.Logger }

func (g *logger) Noticef(f string, v ...any) { g.l.Info(fmt.Sprintf(f, v...), "component", "nats") }
func (g *logger) Warnf(f string, v ...any)   { g.l.Warn(fmt.Sprintf(f, v...), "component", "nats") }
func (g *logger) Errorf(f string, v ...any)  { g.l.Error(fmt.Sprintf(f, v...), "component", "nats") }
func (g *logger) Fatalf(f string, v ...any)  { g.l.Error(fmt.Sprintf(f, v...), "component", "nats") }
func (g *logger) Debugf(f string, v ...any)  { g.l.Debug(fmt.Sprintf(f, v...), "component", "nats") }
func (g *logger) Tracef(f string, v ...any)  { g.l.Debug(fmt.Sprintf(f, v...), "component", "nats") }
