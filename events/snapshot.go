package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotBucket is the object store bucket holding the read models'
// snapshots, one object per kind.
const SnapshotBucket = "SNAPSHOTS"

// Snapshot is a read model's state after a stream sequence: a restart
// loads it and replays only the events after Seq.
type Snapshot struct {
	Kind    Kind
	Version string     // the read model's format; another one is not read
	Seq     uint64     // the last stream sequence folded into Data
	Stream  StreamMark // the stream as it was when its events were folded
	Data    []byte
}

// StreamMark identifies the history a stream holds: a stream deleted and
// created again, purged, or with a message removed has another mark, and
// a state folded from the old history is not the new history's.
type StreamMark struct {
	Created  time.Time // when the stream was created
	FirstSeq uint64
	Deleted  uint64 // messages removed from inside the stream
	LastSeq  uint64 // not part of the identity: the end of the history
}

// Same reports whether m and o mark the same history (LastSeq aside).
func (m StreamMark) Same(o StreamMark) bool {
	return m.Created.Equal(o.Created) && m.FirstSeq == o.FirstSeq && m.Deleted == o.Deleted
}

// Mark returns the mark of kind's stream now.
func (s *JetStream) Mark(ctx context.Context, kind Kind) (StreamMark, error) {
	st, err := s.stream(ctx, kind)
	if err != nil {
		return StreamMark{}, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return StreamMark{}, fmt.Errorf("events: stream info %s: %w", kind.Stream(), err)
	}
	first := info.State.FirstSeq
	if info.State.LastSeq == 0 {
		first = 1 // a stream never written to says 0, and 1 from its first message on
	}
	return StreamMark{Created: info.Created, FirstSeq: first, Deleted: uint64(info.State.NumDeleted), LastSeq: info.State.LastSeq}, nil
}

// Snapshots keeps snapshots in the object store bucket SnapshotBucket: any
// size (objects are chunked), replicated like the event streams.
type Snapshots struct {
	obj jetstream.ObjectStore
}

// NewSnapshots opens (creating it if needed) the snapshot bucket.
func NewSnapshots(ctx context.Context, js jetstream.JetStream, replicas int) (*Snapshots, error) {
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: SnapshotBucket, Description: "jetprop read model snapshots (a cache: deleting it costs one full replay)",
		Replicas: max(replicas, 1), Storage: jetstream.FileStorage, Compression: true,
	})
	if err != nil {
		return nil, fmt.Errorf("events: snapshot bucket: %w", err)
	}
	return &Snapshots{obj: obj}, nil
}

// Metadata keys of a snapshot object.
const (
	metaSnapVersion  = "version"
	metaSnapSeq      = "seq"
	metaSnapCreated  = "stream-created"
	metaSnapFirstSeq = "stream-first-seq"
	metaSnapDeleted  = "stream-deleted"
)

// Put stores snap as its kind's snapshot, replacing the one before.
func (s *Snapshots) Put(ctx context.Context, snap Snapshot) error {
	meta := jetstream.ObjectMeta{Name: string(snap.Kind), Metadata: map[string]string{
		metaSnapVersion:  snap.Version,
		metaSnapSeq:      strconv.FormatUint(snap.Seq, 10),
		metaSnapCreated:  snap.Stream.Created.UTC().Format(time.RFC3339Nano),
		metaSnapFirstSeq: strconv.FormatUint(snap.Stream.FirstSeq, 10),
		metaSnapDeleted:  strconv.FormatUint(snap.Stream.Deleted, 10),
	}}
	if _, err := s.obj.Put(ctx, meta, bytes.NewReader(snap.Data)); err != nil {
		return fmt.Errorf("events: put snapshot %s: %w", snap.Kind, err)
	}
	return nil
}

// Get returns kind's snapshot; false when there is none.
func (s *Snapshots) Get(ctx context.Context, kind Kind) (Snapshot, bool, error) {
	data, err := s.obj.GetBytes(ctx, string(kind))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("events: get snapshot %s: %w", kind, err)
	}
	info, err := s.obj.GetInfo(ctx, string(kind))
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("events: get snapshot %s: %w", kind, err)
	}
	snap, err := snapshotOf(kind, info.Metadata, data)
	return snap, err == nil, err
}

// Delete removes kind's snapshot, if any.
func (s *Snapshots) Delete(ctx context.Context, kind Kind) error {
	err := s.obj.Delete(ctx, string(kind))
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("events: delete snapshot %s: %w", kind, err)
	}
	return nil
}

func snapshotOf(kind Kind, meta map[string]string, data []byte) (Snapshot, error) {
	snap := Snapshot{Kind: kind, Version: meta[metaSnapVersion], Data: data}
	var errs [4]error
	snap.Seq, errs[0] = strconv.ParseUint(meta[metaSnapSeq], 10, 64)
	snap.Stream.Created, errs[1] = time.Parse(time.RFC3339Nano, meta[metaSnapCreated])
	snap.Stream.FirstSeq, errs[2] = strconv.ParseUint(meta[metaSnapFirstSeq], 10, 64)
	snap.Stream.Deleted, errs[3] = strconv.ParseUint(meta[metaSnapDeleted], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return Snapshot{}, fmt.Errorf("events: snapshot %s: bad metadata: %w", kind, err)
	}
	return snap, nil
}
