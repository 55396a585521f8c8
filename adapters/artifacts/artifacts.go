// Package artifacts keeps wasm modules in the JetStream object store bucket
// MODULES, keyed by their sha256 digest ("sha256:<hex>").
package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/engine/domain"
)

// Bucket is the object store bucket holding modules.
const Bucket = "MODULES"

// Options configures the store.
type Options struct {
	MaxSize  int64 // default domain.DefaultMaxModuleSize
	Replicas int   // default 1
}

// Store is the module store.
type Store struct {
	obj     jetstream.ObjectStore
	maxSize int64
}

// New creates (idempotently) the bucket and returns the store.
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = domain.DefaultMaxModuleSize
	}
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      Bucket,
		Description: "jetprop wasm modules by sha256 digest",
		Storage:     jetstream.FileStorage,
		Replicas:    max(opts.Replicas, 1),
		Compression: true,
	})
	if err != nil {
		return nil, fmt.Errorf("artifacts: bucket %s: %w", Bucket, err)
	}
	return &Store{obj: obj, maxSize: opts.MaxSize}, nil
}

// MaxSize is the largest module accepted.
func (s *Store) MaxSize() int64 { return s.maxSize }

// Put checks that r holds a wasm module no larger than the limit, stores it
// once per digest and returns the digest. r is spooled through a temp file
// while hashed, never held whole in memory.
func (s *Store) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	f, err := os.CreateTemp("", "jetprop-module-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	digest, size, err := s.spool(f, r)
	if err != nil {
		return "", 0, err
	}
	if _, err := s.obj.GetInfo(ctx, digest); err == nil {
		return digest, size, nil
	}
	if err := validate(ctx, f, size); err != nil {
		return "", 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	meta := jetstream.ObjectMeta{Name: digest, Description: "wasm module", Headers: nil}
	if _, err := s.obj.Put(ctx, meta, f); err != nil {
		return "", 0, fmt.Errorf("artifacts: store %s: %w", digest, err)
	}
	return digest, size, nil
}

func (s *Store) spool(w io.Writer, r io.Reader) (string, int64, error) {
	return domain.CopyModule(w, r, s.maxSize)
}

// Get returns a module's bytes.
func (s *Store) Get(ctx context.Context, digest string) ([]byte, error) {
	if !domain.ValidDigest(digest) {
		return nil, fmt.Errorf("%w: %q is not a sha256 digest", domain.ErrModuleNotFound, digest)
	}
	b, err := s.obj.GetBytes(ctx, digest)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", domain.ErrModuleNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("artifacts: get %s: %w", digest, err)
	}
	return b, nil
}

// Has reports whether the module is stored.
func (s *Store) Has(ctx context.Context, digest string) bool {
	_, err := s.obj.GetInfo(ctx, digest)
	return err == nil
}

// Stat returns the size of a stored module; ok is false when it is not
// stored (or digest is no sha256 digest).
func (s *Store) Stat(ctx context.Context, digest string) (size int64, ok bool, err error) {
	if !domain.ValidDigest(digest) {
		return 0, false, nil
	}
	info, err := s.obj.GetInfo(ctx, digest)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("artifacts: stat %s: %w", digest, err)
	}
	return int64(info.Size), true, nil
}

// Open streams a module from the object store and returns its size. The
// reader fails at its end if the bytes do not match the stored digest.
func (s *Store) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	if !domain.ValidDigest(digest) {
		return nil, 0, fmt.Errorf("%w: %q is not a sha256 digest", domain.ErrModuleNotFound, digest)
	}
	res, err := s.obj.Get(ctx, digest)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", domain.ErrModuleNotFound, digest)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("artifacts: open %s: %w", digest, err)
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return nil, 0, fmt.Errorf("artifacts: open %s: %w", digest, err)
	}
	return res, int64(info.Size), nil
}

// Delete removes a module; removing one that is not stored is no error.
func (s *Store) Delete(ctx context.Context, digest string) error {
	if !domain.ValidDigest(digest) {
		return nil
	}
	err := s.obj.Delete(ctx, digest)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("artifacts: delete %s: %w", digest, err)
	}
	return nil
}
