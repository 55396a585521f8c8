package service

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Key is a client's idempotency key: the same key from the same caller
// creates one aggregate, however often and on however many engine
// replicas the create is repeated. The caller scopes it (an API token's
// id; "" without authentication), so two callers' keys never meet.
type Key struct {
	Caller string
	Value  string
}

// KeyIDPrefix starts every id derived from an idempotency key. It is
// lower case, so it never starts a ULID (upper-case Crockford base32),
// and a derived id has no '-' after it, so it is no workflow step's task
// id (workflow-step-attempt) either.
const KeyIDPrefix = "key-"

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ID is the aggregate id the key stands for: KeyIDPrefix and 160 bits of
// the SHA-256 of caller and value, in lower-case base32 (36 characters).
func (k Key) ID() string {
	sum := sha256.Sum256([]byte(k.Caller + "\x00" + k.Value))
	return KeyIDPrefix + toLower(keyEncoding.EncodeToString(sum[:20]))
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// requestDigest is the "sha256:<hex>" of v's JSON (map keys sorted), what
// a repeated create is compared by.
func requestDigest(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%w: request digest: %v", domain.ErrInvalid, err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// CreateTaskOnce is CreateTask under an idempotency key: the task's id is
// key.ID() and its creation is appended with expected sequence 0, so of
// creates with one key, wherever they run, exactly one appends; the
// others find the task and return it with replayed true. The request is
// compared by digest (the spec as sent, with the digest of the module
// when one is sent): another request under a used key is
// domain.ErrKeyReused, and a task deleted since is domain.ErrExists. A
// zero key is CreateTask.
func (s *Service) CreateTaskOnce(ctx context.Context, key Key, spec events.TaskCreated, module io.Reader) (t engine.Task, replayed bool, err error) {
	if key.Value == "" {
		t, err = s.CreateTask(ctx, spec, module)
		return t, false, err
	}
	if spec, err = s.taskSpec(ctx, spec, module, true); err != nil {
		return engine.Task{}, false, err
	}
	t, err = s.do(ctx, engine.CreateTask{ID: key.ID(), Spec: spec})
	if !errors.Is(err, domain.ErrExists) {
		return t, false, err
	}
	if err := sameRequest(key, "task", t.ID, spec.RequestDigest, t.RequestDigest, t.Deleted); err != nil {
		return engine.Task{}, false, err
	}
	t, err = readBack(ctx, s.readTimeout, s.tasks, t.ID, t.Seq, t)
	return t, true, err
}

// sameRequest refuses a repeated create under key whose aggregate was
// made by another request (stored is its digest), or deleted since.
func sameRequest(key Key, kind, id, digest, stored string, deleted bool) error {
	switch {
	case stored != digest:
		return fmt.Errorf("%w: Idempotency-Key %q created %s %s from another request; send a new key for a new %s",
			domain.ErrKeyReused, key.Value, kind, id, kind)
	case deleted:
		return fmt.Errorf("%s %s of Idempotency-Key %q was deleted; send a new key: %w", kind, id, key.Value, domain.ErrExists)
	}
	return nil
}
