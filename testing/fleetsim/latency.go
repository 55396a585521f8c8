package fleetsim

import (
	"slices"
	"sync"
	"time"
)

// maxSamples bounds the samples a Latency keeps between resets (8 MiB);
// later ones are counted, not kept.
const maxSamples = 1 << 20

// Latency records durations and summarises them. It is safe for
// concurrent use.
type Latency struct {
	mu      sync.Mutex
	samples []time.Duration
	dropped int
}

// Add records one duration.
func (l *Latency) Add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) >= maxSamples {
		l.dropped++
		return
	}
	l.samples = append(l.samples, d)
}

// Reset forgets every sample: the next Summary covers what comes after.
func (l *Latency) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples, l.dropped = nil, 0
}

// Summary is the count and quantiles of the recorded durations.
type Summary struct {
	Count int      `json:"count"`
	P50   Duration `json:"p50"`
	P90   Duration `json:"p90"`
	P99   Duration `json:"p99"`
	Max   Duration `json:"max"`
}

// Summary summarises the samples since the last Reset.
func (l *Latency) Summary() Summary {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	dropped := l.dropped
	l.mu.Unlock()
	return summarize(s, dropped)
}

func summarize(s []time.Duration, dropped int) Summary {
	if len(s) == 0 {
		return Summary{Count: dropped}
	}
	slices.Sort(s)
	q := func(p float64) Duration { return Duration(s[min(len(s)-1, int(p*float64(len(s))))]) }
	return Summary{Count: len(s) + dropped, P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: Duration(s[len(s)-1])}
}

// Duration is a time.Duration that reads and writes JSON as text ("1.5s").
type Duration time.Duration

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// String is time.Duration's.
func (d Duration) String() string { return time.Duration(d).String() }
