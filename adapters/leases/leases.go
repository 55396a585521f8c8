// Package leases shares work among engine replicas: the work is cut into
// a fixed number of partitions, and each partition is owned by one replica
// at a time through a lease, a key in a JetStream key-value bucket that
// its owner renews and that expires when it stops.
//
// Ownership is decided by the bucket's compare-and-set alone (Create
// succeeds only for a key that does not exist, Update only at the revision
// its owner last wrote), so two replicas never hold one partition at the
// same revision. A replica counts a lease as its own only until TTL minus
// a margin after it sent the write that renewed it: the server removes the
// key TTL after it stored that write, which is later, so by the time
// another replica can take a partition its old owner has stopped acting on
// it, whatever happened to the old owner (crashed, cut off, paused).
//
// Replicas announce themselves with a key of their own, expiring the same
// way; each takes its share (the partitions divided by the replicas, rounded
// up) of the partitions nobody holds, and gives back what it holds beyond
// its share, so a replica that joins gets work and one that dies has its
// partitions taken over within a TTL and a round.
package leases

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults.
const (
	DefaultBucket     = "JP_LEASES"
	DefaultPartitions = 64
	DefaultTTL        = 5 * time.Second
)

// Config declares a replica's share of the leases.
type Config struct {
	Replica    string        // this replica's id, stable across restarts (required)
	Bucket     string        // default DefaultBucket
	Partitions int           // default DefaultPartitions; every replica must use the same
	TTL        time.Duration // a lease not renewed for TTL is free (default 5 s)
	Replicas   int           // of the bucket: 1 on one box, 3 on a cluster
	Logger     *slog.Logger
}

func (c *Config) setDefaults() {
	c.Bucket = cmp.Or(c.Bucket, DefaultBucket)
	c.Partitions = cmp.Or(max(c.Partitions, 0), DefaultPartitions)
	c.TTL = cmp.Or(max(c.TTL, 0), DefaultTTL)
	c.Replicas = max(c.Replicas, 1)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Leases is one replica's view of the partitions it owns.
type Leases struct {
	cfg Config
	js  jetstream.JetStream
	kv  jetstream.KeyValue // Round's alone once New returned
	log *slog.Logger

	mu      sync.Mutex
	owned   map[int]lease // partition -> this replica's lease on it
	changed chan struct{}
}

// lease is a partition this replica holds: the revision it last wrote and
// the time until which it may act on it.
type lease struct {
	rev   uint64
	until time.Time
}

// margin is how long before its expiry a lease stops counting: a fifth of
// the TTL (clock rates differ a little; a pause between the check and the
// work it guards takes a little).
func (c Config) margin() time.Duration { return c.TTL / 5 }

// New creates (or opens) the bucket.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Leases, error) {
	if cfg.Replica == "" {
		return nil, errors.New("leases: replica id is required")
	}
	if strings.ContainsAny(cfg.Replica, ".*> \t") {
		return nil, fmt.Errorf("leases: replica id %q: no dots, wildcards or spaces", cfg.Replica)
	}
	cfg.setDefaults()
	l := &Leases{cfg: cfg, js: js, log: cfg.Logger, owned: map[int]lease{}, changed: make(chan struct{}, 1)}
	if err := l.open(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// open creates the bucket, or opens it as it is.
func (l *Leases) open(ctx context.Context) error {
	kv, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      l.cfg.Bucket,
		Description: "engine replicas' leases on partitions of the work",
		History:     1,
		TTL:         l.cfg.TTL,
		// On disk, though leases live seconds: a key a replicated memory
		// stream lost when its leader moved (measured in the cluster chaos
		// test: "wrong last sequence: 0" on renewals after a node stopped)
		// let another replica take a partition its holder still counted.
		Storage:  jetstream.FileStorage,
		Replicas: l.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("leases: bucket %s: %w", l.cfg.Bucket, err)
	}
	l.kv = kv
	return nil
}

// gone reports whether err says the bucket is not there (deleted by
// hand, or JetStream turned off and on without its store), so that it is
// made again.
func gone(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// Partitions is how many partitions the work is cut into.
func (l *Leases) Partitions() int { return l.cfg.Partitions }

// Partition is the partition key belongs to (FNV-1a).
func (l *Leases) Partition(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(l.cfg.Partitions))
}

// Owns reports whether this replica may act on key now.
func (l *Leases) Owns(key string) bool {
	return l.OwnsPartition(l.Partition(key))
}

// OwnsPartition reports whether this replica may act on partition p now.
func (l *Leases) OwnsPartition(p int) bool {
	l.mu.Lock()
	ls, ok := l.owned[p]
	l.mu.Unlock()
	return ok && time.Now().Before(ls.until)
}

// Owned lists the partitions this replica may act on now, in order.
func (l *Leases) Owned() []int {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for p := range l.cfg.Partitions {
		if ls, ok := l.owned[p]; ok && now.Before(ls.until) {
			out = append(out, p)
		}
	}
	return out
}

// Gained is signalled (at most one pending signal) after a round in which
// this replica took a partition: whoever acts on partitions looks for the
// work of the new ones then.
func (l *Leases) Gained() <-chan struct{} { return l.changed }

// Run renews, takes and gives back leases every TTL/4 until ctx is done,
// then gives back what it holds, so the others need not wait for expiry.
func (l *Leases) Run(ctx context.Context) error {
	tick := time.NewTicker(l.cfg.TTL / 4)
	defer tick.Stop()
	for {
		l.Round(ctx)
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-tick.C:
		}
	}
}

// Round is one renewal: announce this replica, renew its leases, count
// the replicas, then take or give back partitions to hold its share.
// Errors are logged: a lease not renewed stops counting at its time.
func (l *Leases) Round(ctx context.Context) {
	start := time.Now()
	_, err := l.kv.Put(ctx, memberKey(l.cfg.Replica), nil)
	if err != nil && gone(err) && ctx.Err() == nil {
		if err = l.open(ctx); err == nil {
			l.log.Info("leases: bucket made again", "bucket", l.cfg.Bucket)
			_, err = l.kv.Put(ctx, memberKey(l.cfg.Replica), nil)
		}
	}
	if err != nil && ctx.Err() == nil {
		l.log.Warn("leases: announce replica", "err", err)
	}
	if l.renew(ctx, start) {
		l.log.Warn("leases: a lease ran out before its renewal took; its work is looked at again", "round_took", time.Since(start))
		l.signal()
	}
	n, err := l.countMembers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("leases: count replicas", "err", err)
		}
		return
	}
	share := (l.cfg.Partitions + n - 1) / n
	l.mu.Lock()
	held := len(l.owned)
	l.mu.Unlock()
	switch {
	case held > share:
		l.giveBack(ctx, held-share)
	case held < share:
		if l.take(ctx, share-held, start) {
			l.signal()
		}
	}
}

// signal notes that this replica may act on partitions it could not act
// on before.
func (l *Leases) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// renew writes every held lease again at its revision; one that fails for
// any reason but a timeout is lost (someone else holds it, or it expired).
// It reports whether a lease whose time had run out (renewals failed
// while JetStream was unavailable, or were slow) counts again: the events
// of its tasks seen meanwhile were not acted on.
func (l *Leases) renew(ctx context.Context, start time.Time) (revived bool) {
	l.mu.Lock()
	held := make(map[int]uint64, len(l.owned))
	for p, ls := range l.owned {
		held[p] = ls.rev
	}
	l.mu.Unlock()
	for p, rev := range held {
		nrev, err := l.kv.Update(ctx, partKey(p), []byte(l.cfg.Replica), rev)
		l.mu.Lock()
		switch {
		case err == nil:
			// Revived when the lease ran out before this renewal took:
			// before the round began, or while it waited on a slow
			// store. Owns said no meanwhile, and whoever acts on the
			// partition may have passed its work by.
			revived = revived || !time.Now().Before(l.owned[p].until)
			l.owned[p] = lease{rev: nrev, until: start.Add(l.cfg.TTL - l.cfg.margin())}
		case lost(err):
			delete(l.owned, p)
			l.log.Info("leases: partition lost", "partition", p)
		default:
			// Unknown: keep it until its time runs out, and try again.
			if ctx.Err() == nil {
				l.log.Warn("leases: renew", "partition", p, "err", err)
			}
			if !start.Before(l.owned[p].until) {
				delete(l.owned, p)
			}
		}
		l.mu.Unlock()
	}
	return revived
}

// countMembers counts the replicas whose announcement has not expired.
func (l *Leases) countMembers(ctx context.Context) (int, error) {
	keys, err := l.kv.ListKeysFiltered(ctx, memberKey("*"))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return 1, nil
		}
		return 0, err
	}
	defer func() { _ = keys.Stop() }()
	n := 0
	for range keys.Keys() {
		n++
	}
	return max(n, 1), nil
}

// take tries to hold want more partitions, starting at a place of its own
// so that replicas do not all race for the same keys; a partition this
// replica held before a restart (its key still names it) is taken back at
// once. It reports whether it took any.
func (l *Leases) take(ctx context.Context, want int, start time.Time) bool {
	P := l.cfg.Partitions
	first := l.Partition(l.cfg.Replica)
	took := false
	for i := 0; i < P && want > 0 && ctx.Err() == nil; i++ {
		p := (first + i) % P
		l.mu.Lock()
		_, mine := l.owned[p]
		l.mu.Unlock()
		if mine {
			continue
		}
		rev, err := l.kv.Create(ctx, partKey(p), []byte(l.cfg.Replica))
		if errors.Is(err, jetstream.ErrKeyExists) {
			rev, err = l.reclaim(ctx, p)
		}
		if err != nil || rev == 0 {
			continue
		}
		l.mu.Lock()
		l.owned[p] = lease{rev: rev, until: start.Add(l.cfg.TTL - l.cfg.margin())}
		l.mu.Unlock()
		want--
		took = true
	}
	return took
}

// reclaim takes back a partition whose key still names this replica (it
// held it before a restart); 0 when the key names another.
func (l *Leases) reclaim(ctx context.Context, p int) (uint64, error) {
	e, err := l.kv.Get(ctx, partKey(p))
	if err != nil || string(e.Value()) != l.cfg.Replica {
		return 0, err
	}
	return l.kv.Update(ctx, partKey(p), []byte(l.cfg.Replica), e.Revision())
}

// giveBack deletes n held leases, the highest partitions first, so that
// replicas joining find free ones.
func (l *Leases) giveBack(ctx context.Context, n int) {
	l.mu.Lock()
	var drop []int
	for p := l.cfg.Partitions - 1; p >= 0 && len(drop) < n; p-- {
		if _, ok := l.owned[p]; ok {
			drop = append(drop, p)
		}
	}
	revs := make([]uint64, len(drop))
	for i, p := range drop {
		revs[i] = l.owned[p].rev
		delete(l.owned, p) // stop acting before the key is free
	}
	l.mu.Unlock()
	for i, p := range drop {
		if err := l.kv.Delete(ctx, partKey(p), jetstream.LastRevision(revs[i])); err != nil && ctx.Err() == nil {
			l.log.Warn("leases: give back", "partition", p, "err", err)
		}
	}
}

// release gives back every lease and the replica's announcement, at
// shutdown.
func (l *Leases) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.mu.Lock()
	n := len(l.owned)
	l.mu.Unlock()
	l.giveBack(ctx, n)
	_ = l.kv.Delete(ctx, memberKey(l.cfg.Replica))
}

// lost reports whether a write failed because the key is not this
// replica's at the revision it wrote (taken, expired or deleted).
func lost(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound)
}

func partKey(p int) string       { return "part." + strconv.Itoa(p) }
func memberKey(id string) string { return "member." + id }
