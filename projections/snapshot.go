package projections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"

	"github.com/jetprop/jetprop/events"
)

// SnapshotFormat is the snapshots' format. Bump it when a fold (an
// engine state's Apply, or a read model's own bookkeeping) changes what a
// history folds to without changing the state's fields: a snapshot of
// another format, or of a state whose Go type changed (its fields, their
// types and JSON tags, checked by the version's fingerprint), is not read
// and the read model replays its whole stream instead.
const SnapshotFormat = 1

// SnapshotStore keeps one snapshot per kind (events.Snapshots).
type SnapshotStore interface {
	Put(ctx context.Context, snap events.Snapshot) error
	Get(ctx context.Context, kind events.Kind) (events.Snapshot, bool, error)
}

// Marker tells what history a stream holds (events.JetStream).
type Marker interface {
	Mark(ctx context.Context, kind events.Kind) (events.StreamMark, error)
}

// Snapshotter is a read model that can save its state and start from it.
type Snapshotter interface {
	Projection
	// SnapshotVersion names the format and the state types of its snapshots.
	SnapshotVersion() string
	// Snapshot encodes the model and returns the last sequence it folded.
	Snapshot() (seq uint64, data []byte, err error)
	// Restore loads a snapshot into an empty model that nothing follows
	// or reads yet; on an error the model is left empty.
	Restore(seq uint64, data []byte) error
}

var (
	_ Snapshotter = (*Tasks)(nil)
	_ Snapshotter = (*Devices)(nil)
	_ Snapshotter = (*Workflows)(nil)
)

// Snapshots restores read models from their snapshots at start and saves
// them while they run. A snapshot is a cache of a replay: one that does
// not fit the stream (another version, a stream deleted, purged or with a
// message removed since) is ignored, and saving is skipped while a kind
// has a quarantined aggregate or its stream changed under the running
// model, so a model started from a snapshot and the tail of its stream
// holds what a full replay would.
type Snapshots struct {
	store      SnapshotStore
	marks      Marker
	quarantine *events.Quarantine
	base       map[events.Kind]events.StreamMark // the stream when the model started
	saved      map[events.Kind]uint64            // the sequence of the last snapshot written
}

// NewSnapshots returns snapshots kept in store, checked against marks.
func NewSnapshots(store SnapshotStore, marks Marker, q *events.Quarantine) *Snapshots {
	return &Snapshots{store: store, marks: marks, quarantine: q, base: map[events.Kind]events.StreamMark{}, saved: map[events.Kind]uint64{}}
}

// Restored says how a read model started.
type Restored struct {
	Kind   events.Kind
	Seq    uint64 // the snapshot's last sequence; 0: none was used
	Reason string // why none was used
}

// Restore loads p's snapshot when there is one that fits its stream; p
// must be empty. It fails only when the stream cannot be read: a missing,
// old or unreadable snapshot means a full replay, and Reason says why.
func (s *Snapshots) Restore(ctx context.Context, p Snapshotter) (Restored, error) {
	k := p.Kind()
	r := Restored{Kind: k}
	mark, err := s.marks.Mark(ctx, k)
	if err != nil {
		return r, err
	}
	s.base[k] = mark
	snap, ok, err := s.store.Get(ctx, k)
	switch {
	case err != nil:
		r.Reason = "unreadable: " + err.Error()
	case !ok:
		r.Reason = "no snapshot"
	case snap.Version != p.SnapshotVersion():
		r.Reason = fmt.Sprintf("version %q, this binary reads %q", snap.Version, p.SnapshotVersion())
	case !snap.Stream.Same(mark) || snap.Seq > mark.LastSeq:
		r.Reason = "the stream changed since (deleted, purged or a message removed)"
	default:
		if err := p.Restore(snap.Seq, snap.Data); err != nil {
			r.Reason = "does not decode: " + err.Error()
			return r, nil
		}
		s.saved[k], r.Seq = snap.Seq, snap.Seq
	}
	return r, nil
}

// Save writes p's snapshot if p folded events since the last one and
// its stream is as it was when p started. It reports whether it wrote.
func (s *Snapshots) Save(ctx context.Context, p Snapshotter) (bool, error) {
	k := p.Kind()
	if s.held(k) || p.LastSeq() == s.saved[k] {
		return false, nil
	}
	mark, err := s.marks.Mark(ctx, k) // before the model: a removal after it shows at the next start
	if err != nil {
		return false, err
	}
	if base, ok := s.base[k]; !ok || !base.Same(mark) {
		return false, nil
	}
	seq, data, err := p.Snapshot()
	if err != nil || seq == 0 || seq == s.saved[k] {
		return false, err
	}
	snap := events.Snapshot{Kind: k, Version: p.SnapshotVersion(), Seq: seq, Stream: mark, Data: data}
	if err := s.store.Put(ctx, snap); err != nil {
		return false, err
	}
	s.saved[k] = seq
	return true, nil
}

// held reports whether kind has a quarantined aggregate or a damaged
// stream: the quarantine is rebuilt by replay, so such a model is not saved.
func (s *Snapshots) held(k events.Kind) bool {
	for _, r := range s.quarantine.List() {
		if r.Stream == k.Stream() {
			return true
		}
	}
	for _, p := range s.quarantine.Streams() {
		if p.Stream == k.Stream() {
			return true
		}
	}
	return false
}

// snapshotVersion is a read model's snapshot version: its name, the
// format and a fingerprint of the Go types it encodes.
func snapshotVersion(name string, types ...any) string {
	h := sha256.New()
	for _, t := range types {
		writeType(h, reflect.TypeOf(t), map[reflect.Type]bool{})
	}
	return fmt.Sprintf("%s/%d/%s", name, SnapshotFormat, hex.EncodeToString(h.Sum(nil))[:16])
}

// writeType writes a description of t: its kind, and for a struct every
// field's name, tag and type, recursively.
func writeType(w interface{ Write([]byte) (int, error) }, t reflect.Type, seen map[reflect.Type]bool) {
	fmt.Fprintf(w, "%s:%s(", t.String(), t.Kind())
	defer fmt.Fprint(w, ")")
	if seen[t] {
		return
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(w, "%s `%s` ", f.Name, strings.TrimSpace(string(f.Tag)))
			writeType(w, f.Type, seen)
		}
	case reflect.Slice, reflect.Array, reflect.Pointer:
		writeType(w, t.Elem(), seen)
	case reflect.Map:
		writeType(w, t.Key(), seen)
		writeType(w, t.Elem(), seen)
	}
}
