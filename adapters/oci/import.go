package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jetprop/jetprop/engine/domain"
)

// Store is where Import puts modules: an *artifacts.Store, or any cache
// keyed by sha256 digest. Put checks the wasm header (domain.ErrNotWasm)
// and the size limit (domain.ErrTooLarge) and returns the digest of what
// it stored.
type Store interface {
	Has(ctx context.Context, digest string) bool
	MaxSize() int64
	Put(ctx context.Context, r io.Reader) (digest string, size int64, err error)
}

// Import pulls the module ref names into store and returns its digest and
// size. The layer streams from the registry through Store.Put (which, for
// an *artifacts.Store, checks the wasm header and the size limit and spools
// to a temp file), so a module is never held whole in memory. A module whose layer digest is
// already stored is not downloaded again; one larger than the store's limit
// fails with domain.ErrTooLarge before it is downloaded; one that is not
// wasm fails with domain.ErrNotWasm and leaves the store unchanged.
func Import(ctx context.Context, c *Client, store Store, ref string) (string, int64, error) {
	const op = "import"
	t, err := c.target(op, ref)
	if err != nil {
		return "", 0, err
	}
	l, err := c.resolve(ctx, op, t)
	if err != nil {
		return "", 0, err
	}
	if strings.HasPrefix(l.Digest, domain.DigestPrefix) && store.Has(ctx, l.Digest) {
		c.log.DebugContext(ctx, "oci: already stored", logRef, ref, logLayer, l.Digest)
		return l.Digest, l.Size, nil
	}
	if err := checkSize(op, t, l, store.MaxSize()); err != nil {
		return "", 0, err
	}
	rc, err := c.open(ctx, op, t, l)
	if err != nil {
		return "", 0, err
	}
	defer closeQuietly(rc)
	d, n, err := store.Put(ctx, rc)
	if err != nil {
		return "", 0, importError(t, l, err)
	}
	if d != l.Digest && strings.HasPrefix(l.Digest, domain.DigestPrefix) {
		return "", 0, &Error{Op: op, Ref: ref, Kind: ErrDigestMismatch,
			Msg: fmt.Sprintf("stored %s, the manifest says %s", d, l.Digest)}
	}
	return d, n, nil
}

// importError keeps the reader's own *Error (a download or digest failure)
// and describes the store's refusals.
func importError(t target, l Layer, err error) error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	msg := fmt.Sprintf("store layer %s (%s): %v", l.Digest, l.MediaType, err)
	if errors.Is(err, domain.ErrNotWasm) {
		msg = fmt.Sprintf("layer %s (%s): %v", l.Digest, l.MediaType, err)
	}
	return &Error{Op: "import", Ref: t.written, Msg: msg, Err: err}
}
