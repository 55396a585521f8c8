package events

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/jetprop/jetprop/engine/domain"
)

// Quarantine is what a process found unreadable in its event streams:
// aggregates stopped by a stored message that is not an event envelope or
// whose body the codec cannot decode, and event streams found damaged when
// the store opened them. It lives in memory and is rebuilt at every start,
// as the read models replay every stream from its first message (or from
// a snapshot, which is never written while its kind holds a record here). Safe for
// concurrent use; the methods that read it accept a nil *Quarantine (an
// empty one).
//
// The JetStream store records the messages it cannot parse and skips them
// (WithQuarantine); the projections record the events they cannot decode
// and skip them with every later event of the same aggregate, so a read
// model keeps the aggregate's last good state; the command handler refuses
// commands to a quarantined aggregate with a *QuarantineError.
type Quarantine struct {
	mu        sync.RWMutex
	held      map[string]Quarantined // by aggregate, or by stream and sequence for a subject that names none
	streams   []StreamProblem
	observers []func(Quarantined)
}

// NewQuarantine returns an empty quarantine.
func NewQuarantine() *Quarantine { return &Quarantine{held: map[string]Quarantined{}} }

// Quarantined is a stored message that cannot be read as an event, and the
// aggregate it stops.
type Quarantined struct {
	Aggregate Aggregate           `json:"aggregate"` // zero when the subject names none
	Stream    string              `json:"stream"`
	Seq       uint64              `json:"seq"` // stream sequence of the message
	Subject   string              `json:"subject"`
	Headers   map[string][]string `json:"headers,omitempty"` // values cut to ExcerptSize
	Data      string              `json:"data"`              // a printable excerpt: at most ExcerptSize bytes, the rest as "…"
	Size      int                 `json:"size"`              // bytes of the message's data
	Reason    string              `json:"error"`             // why it cannot be read
}

// ExcerptSize is how many bytes of a quarantined message's data, and of each
// header value, a record keeps.
const ExcerptSize = 512

// maxHeaders is how many header values a record keeps.
const maxHeaders = 32

// key identifies what r stops: its aggregate, else its message.
func (r Quarantined) key() string {
	if r.Aggregate.Kind != "" && r.Aggregate.ID != "" {
		return r.Aggregate.String()
	}
	return r.Stream + "#" + strconv.FormatUint(r.Seq, 10)
}

// NewQuarantined returns the record of a stored message of kind's stream
// that cannot be read because of err. The aggregate is the one the subject
// names, if any.
func NewQuarantined(kind Kind, subject string, headers map[string][]string, data []byte, seq uint64, err error) Quarantined {
	r := Quarantined{
		Stream: kind.Stream(), Seq: seq, Subject: subject,
		Headers: cutHeaders(headers), Data: excerpt(data, ExcerptSize), Size: len(data), Reason: err.Error(),
	}
	if agg, ok := aggregateOf(subject); ok && agg.Kind == kind {
		r.Aggregate = agg
	}
	return r
}

// QuarantinedEnvelope returns the record of a stored event whose body
// cannot be decoded because of err; its headers are the ones the store
// writes for env.
func QuarantinedEnvelope(env Envelope, err error) Quarantined {
	return NewQuarantined(env.Aggregate.Kind, env.Aggregate.Subject(), toMsg(env.Aggregate, env).Header, env.Data, env.Seq, err)
}

func aggregateOf(subject string) (Aggregate, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	kind, id, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || kind == "" || id == "" {
		return Aggregate{}, false
	}
	return Aggregate{Kind: Kind(kind), ID: id}, true
}

// cutHeaders keeps at most maxHeaders header values, each cut to
// ExcerptSize.
func cutHeaders(h map[string][]string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := map[string][]string{}
	n := 0
	for _, k := range slices.Sorted(maps.Keys(h)) {
		name := excerpt([]byte(k), 64)
		for _, v := range h[k] {
			if n == maxHeaders {
				return out
			}
			out[name] = append(out[name], excerpt([]byte(v), ExcerptSize))
			n++
		}
	}
	return out
}

// excerpt renders at most n bytes of b printable: valid UTF-8 that prints
// as is, tabs and newlines as \t and \n, any other byte or control
// character as \xNN or \u{NNNN}; "…" marks a cut.
func excerpt(b []byte, n int) string {
	var sb strings.Builder
	for rest := b[:min(len(b), n)]; len(rest) > 0; {
		r, size := utf8.DecodeRune(rest)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&sb, `\x%02x`, rest[0])
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\t':
			sb.WriteString(`\t`)
		case !unicode.IsPrint(r) && r != ' ':
			fmt.Fprintf(&sb, `\u{%04x}`, r)
		default:
			sb.WriteRune(r)
		}
		rest = rest[size:]
	}
	if len(b) > n {
		sb.WriteString("…")
	}
	return sb.String()
}

// Add records r and reports whether it is news: the first record of its
// aggregate, or one at an earlier sequence (a record keeps the first
// message that stops the aggregate). Observers are told of news.
func (q *Quarantine) Add(r Quarantined) bool {
	q.mu.Lock()
	prev, ok := q.held[r.key()]
	news := !ok || r.Seq < prev.Seq
	if news {
		q.held[r.key()] = r
	}
	obs := q.observers
	q.mu.Unlock()
	if news {
		for _, fn := range obs {
			fn(r)
		}
	}
	return news
}

// Observe calls fn with every record that is news from now on. fn must
// not block.
func (q *Quarantine) Observe(fn func(Quarantined)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.observers = append(q.observers, fn)
}

// Get returns the record that quarantines agg.
func (q *Quarantine) Get(agg Aggregate) (Quarantined, bool) {
	if q == nil {
		return Quarantined{}, false
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if len(q.held) == 0 { // the common case: no key to build
		return Quarantined{}, false
	}
	r, ok := q.held[agg.String()]
	return r, ok
}

// Holds reports whether env is the message that quarantines its aggregate
// or comes after it: a read model does not apply such an event.
func (q *Quarantine) Holds(env Envelope) bool {
	r, ok := q.Get(env.Aggregate)
	return ok && r.Seq <= env.Seq
}

// Check returns a *QuarantineError when agg is quarantined, else nil.
func (q *Quarantine) Check(agg Aggregate) error {
	if r, ok := q.Get(agg); ok {
		return &QuarantineError{Record: r}
	}
	return nil
}

// Len is the number of quarantined aggregates (and messages whose subject
// names none).
func (q *Quarantine) Len() int {
	if q == nil {
		return 0
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	return len(q.held)
}

// List returns every record by stream, then sequence.
func (q *Quarantine) List() []Quarantined {
	if q == nil {
		return nil
	}
	q.mu.RLock()
	out := slices.Collect(maps.Values(q.held))
	q.mu.RUnlock()
	slices.SortFunc(out, func(a, b Quarantined) int {
		return cmp.Or(strings.Compare(a.Stream, b.Stream), cmp.Compare(a.Seq, b.Seq))
	})
	return out
}

// AddStream records a damaged stream.
func (q *Quarantine) AddStream(p StreamProblem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.streams = append(q.streams, p)
}

// Streams returns the damaged streams in the order they were found.
func (q *Quarantine) Streams() []StreamProblem {
	if q == nil {
		return nil
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	return slices.Clone(q.streams)
}

// QuarantineError refuses a command to a quarantined aggregate. It is a
// domain.ErrQuarantined and names the message that stops the aggregate.
type QuarantineError struct {
	Record Quarantined
}

func (e *QuarantineError) Error() string {
	r := e.Record
	return fmt.Sprintf("%s is quarantined: its message at %s sequence %d cannot be read: %s", r.Aggregate, r.Stream, r.Seq, r.Reason)
}

// Unwrap makes the error a domain.ErrQuarantined.
func (e *QuarantineError) Unwrap() error { return domain.ErrQuarantined }

// CorruptError is a stored message that is not an event envelope. It is an
// ErrCorrupt and carries the record that quarantines it.
type CorruptError struct {
	Message Quarantined
	Err     error // why it is not an envelope
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: %s sequence %d (%s): %v", ErrCorrupt, e.Message.Stream, e.Message.Seq, e.Message.Subject, e.Err)
}

// Unwrap makes the error an ErrCorrupt and its cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Unreadable returns the quarantine record of err when err is about a
// stored message that cannot be read: a *CorruptError from a store, a
// *DecodeError from the codec.
func Unreadable(err error) (Quarantined, bool) {
	if c, ok := errors.AsType[*CorruptError](err); ok {
		return c.Message, true
	}
	if d, ok := errors.AsType[*DecodeError](err); ok {
		return QuarantinedEnvelope(d.Envelope, d), true
	}
	return Quarantined{}, false
}
