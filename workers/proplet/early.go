package proplet

import "time"

// Early stops.
const (
	earlyStopWindow = 5 * time.Second
	earlyStopMax    = 1024
)

// earlyStops remembers, briefly, stops for tasks not running here. The
// broker delivers start and stop through separate subscriptions (each a
// JetStream consumer in nats-server), so a stop sent right after its start
// can overtake it; without this the task would then run to its end, or
// forever as a daemon. Guarded by Proplet.mu.
type earlyStops map[string]time.Time

// add records a stop seen at now, dropping expired entries; when full of
// live entries it records nothing (the stop is then only logged).
func (e earlyStops) add(id string, now time.Time) {
	if len(e) >= earlyStopMax {
		e.prune(now)
	}
	if len(e) < earlyStopMax {
		e[id] = now
	}
}

// take reports whether a stop for id arrived within the window, and
// forgets it.
func (e earlyStops) take(id string, now time.Time) bool {
	at, ok := e[id]
	delete(e, id)
	return ok && now.Sub(at) <= earlyStopWindow
}

func (e earlyStops) prune(now time.Time) {
	for id, at := range e {
		if now.Sub(at) > earlyStopWindow {
			delete(e, id)
		}
	}
}
