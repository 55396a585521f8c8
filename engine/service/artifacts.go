package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// ArtifactView is the read model of the artifact catalog.
type ArtifactView interface {
	// Get returns an artifact that exists (has tags).
	Get(name string) (engine.Artifact, bool)
	// List returns up to limit rows from offset, sorted by name and tag,
	// and the total.
	List(offset, limit int) ([]engine.ArtifactTag, int)
	// Tagged returns the rows whose tag points at digest, sorted by name
	// and tag.
	Tagged(digest string) []engine.ArtifactTag
	LastSeq() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// noArtifacts is the catalog of a service built without one: empty.
type noArtifacts struct{}

func (noArtifacts) Get(string) (engine.Artifact, bool)        { return engine.Artifact{}, false }
func (noArtifacts) List(int, int) ([]engine.ArtifactTag, int) { return nil, 0 }
func (noArtifacts) Tagged(string) []engine.ArtifactTag        { return nil }
func (noArtifacts) LastSeq() uint64                           { return 0 }
func (noArtifacts) WaitFor(context.Context, uint64) error     { return nil }

// waitArtifacts waits until the catalog shows sequence seq.
func (s *Service) waitArtifacts(ctx context.Context, seq uint64) error {
	return waitView(ctx, s.readTimeout, s.artifacts, seq)
}

// PushArtifact stores the module read from r and points name:tag at it.
// An empty tag is taken from name ("vision:1.2"), else it is DefaultTag.
// Name and tag are checked before anything is stored.
func (s *Service) PushArtifact(ctx context.Context, name, tag string, r io.Reader) (engine.ArtifactTag, error) {
	ref, err := pushRef(name, tag)
	if err != nil {
		return engine.ArtifactTag{}, err
	}
	digest, size, err := s.modules.Put(ctx, r)
	if err != nil {
		return engine.ArtifactTag{}, err
	}
	return s.tag(ctx, engine.TagArtifact{Name: ref.Name, Tag: ref.Tag, Digest: digest, Size: size, MediaType: engine.MediaTypeWasm, Source: engine.SourceUpload})
}

func pushRef(name, tag string) (engine.ArtifactRef, error) {
	if tag == "" {
		ref, err := engine.ParseArtifactRef(name)
		if err == nil && ref.Digest != "" {
			err = fmt.Errorf("%w: give a name (name:tag) to push under, not a digest", domain.ErrInvalid)
		}
		return ref, err
	}
	ref := engine.ArtifactRef{Name: name, Tag: tag}
	return ref, ref.Validate()
}

// TagArtifact points cmd.Name:cmd.Tag at a module already in the object
// store (put there by an import, say; a zero cmd.Size is taken from the
// store) and returns the catalog row once the catalog shows it.
func (s *Service) TagArtifact(ctx context.Context, cmd engine.TagArtifact) (engine.ArtifactTag, error) {
	if !domain.ValidDigest(cmd.Digest) {
		return engine.ArtifactTag{}, fmt.Errorf("%w: %q is not a sha256 digest", domain.ErrInvalid, cmd.Digest)
	}
	size, ok, err := s.modules.Stat(ctx, cmd.Digest)
	switch {
	case err != nil:
		return engine.ArtifactTag{}, err
	case !ok:
		return engine.ArtifactTag{}, fmt.Errorf("module %s: %w", cmd.Digest, domain.ErrNotFound)
	case cmd.Size == 0:
		cmd.Size = size
	case cmd.Size != size:
		return engine.ArtifactTag{}, fmt.Errorf("%w: module %s has %d bytes, not %d", domain.ErrInvalid, cmd.Digest, size, cmd.Size)
	}
	return s.tag(ctx, cmd)
}

func (s *Service) tag(ctx context.Context, cmd engine.TagArtifact) (engine.ArtifactTag, error) {
	a, err := s.h.Artifact(ctx, cmd)
	if err != nil {
		return engine.ArtifactTag{}, err
	}
	if err := s.waitArtifacts(ctx, a.Seq); err != nil {
		return engine.ArtifactTag{}, err
	}
	row, _ := a.Lookup(cmd.Tag)
	return row, nil
}

// ListArtifacts returns a page of the catalog, sorted by name and tag, and
// the total.
func (s *Service) ListArtifacts(offset, limit int) ([]engine.ArtifactTag, int) {
	return s.artifacts.List(offset, limit)
}

// GetArtifact returns what ref names: "name:tag" or "name" (with the tag's
// history), or "sha256:<hex>" of a stored module (with the first name:tag
// pointing at it, if any).
func (s *Service) GetArtifact(ctx context.Context, ref string) (engine.ArtifactTag, error) {
	r, err := engine.ParseArtifactRef(ref)
	if err != nil {
		return engine.ArtifactTag{}, err
	}
	if r.Digest != "" {
		return s.getDigest(ctx, r.Digest)
	}
	a, ok := s.artifacts.Get(r.Name)
	row, tagged := a.Lookup(r.Tag)
	if !ok || !tagged {
		return engine.ArtifactTag{}, s.notFound(events.ArtifactAggregate(r.Name), fmt.Errorf("artifact %s: %w", r, domain.ErrNotFound))
	}
	row.History = a.TagHistory(r.Tag)
	return row, nil
}

func (s *Service) getDigest(ctx context.Context, digest string) (engine.ArtifactTag, error) {
	size, ok, err := s.modules.Stat(ctx, digest)
	if err != nil {
		return engine.ArtifactTag{}, err
	}
	if !ok {
		return engine.ArtifactTag{}, fmt.Errorf("module %s: %w", digest, domain.ErrNotFound)
	}
	if rows := s.artifacts.Tagged(digest); len(rows) > 0 {
		return rows[0], nil
	}
	return engine.ArtifactTag{Digest: digest, Size: size, MediaType: engine.MediaTypeWasm}, nil
}

// ResolveModule returns the digest and size of the stored module ref names
// (as GetArtifact reads it).
func (s *Service) ResolveModule(ctx context.Context, ref string) (string, int64, error) {
	row, err := s.GetArtifact(ctx, ref)
	return row.Digest, row.Size, err
}

// OpenArtifact streams the module ref names; the caller closes it.
func (s *Service) OpenArtifact(ctx context.Context, ref string) (engine.ArtifactTag, io.ReadCloser, error) {
	row, err := s.GetArtifact(ctx, ref)
	if err != nil {
		return row, nil, err
	}
	rc, _, err := s.modules.Open(ctx, row.Digest)
	return row, rc, err
}

// resolveImage points a task whose image names a stored module at that
// module, keeping the image for display (see StoredModule). A remote
// image is left for the dispatcher and the proplet to fetch.
func (s *Service) resolveImage(ctx context.Context, spec *events.TaskCreated) error {
	if spec.ImageURL == "" || spec.Module != "" {
		return nil
	}
	digest, size, err := s.StoredModule(ctx, spec.ImageURL)
	if err == nil {
		spec.Module, spec.ModuleSize = digest, size
	}
	return err
}

// StoredModule is the one rule of tasks' images and workflow steps'
// modules at create. A remote module (IsRemoteModule: an http(s) URL, or
// an OCI reference whose first element is a registry host) returns ""
// and is fetched when it runs. Anything else names the catalog: a stored
// digest or a catalog name:tag returns its digest and size; one that is
// not stored, or that does not parse, is refused (domain.ErrInvalid), since
// its dispatch would certainly fail.
func (s *Service) StoredModule(ctx context.Context, image string) (string, int64, error) {
	if IsRemoteModule(image) {
		return "", 0, nil
	}
	ref, err := engine.ParseArtifactRef(image)
	if err != nil && strings.Contains(image, "/") {
		return "", 0, notInCatalog(image) // a path without a registry host
	}
	if err != nil {
		return "", 0, fmt.Errorf("image %q: %w (or give a full OCI reference registry/repo:tag)", image, err)
	}
	row, err := s.GetArtifact(ctx, ref.String())
	switch {
	case err == nil:
		return row.Digest, row.Size, nil
	case errors.Is(err, domain.ErrNotFound) && ref.Digest != "":
		return "", 0, fmt.Errorf("%w: image %s: no module with this digest is stored", domain.ErrInvalid, ref)
	case errors.Is(err, domain.ErrNotFound):
		return "", 0, notInCatalog(image)
	}
	return "", 0, err
}

func notInCatalog(image string) error {
	return fmt.Errorf("%w: image %s is not in the catalog; push it with `jetprop artifact push` or give a full OCI reference registry/repo:tag", domain.ErrInvalid, image)
}

// maxDeleteTries bounds how often a delete is checked and tried again when
// the artifact changed under it.
const maxDeleteTries = 3

// DeleteArtifact removes what ref names: the tag of "name:tag" (of "name":
// its DefaultTag), or every tag pointing at "sha256:<hex>". A module no tag
// points at any more is deleted from the object store, which is refused
// (domain.ErrInvalidState) while a task that is not deleted uses it.
func (s *Service) DeleteArtifact(ctx context.Context, ref string) error {
	r, err := engine.ParseArtifactRef(ref)
	if err != nil {
		return err
	}
	return retryConflict(func() error {
		if r.Digest != "" {
			return s.deleteDigest(ctx, r.Digest)
		}
		return s.removeTags(ctx, r.Name, r.Tag)
	})
}

// DeleteArtifactName removes every tag of the artifact name, with the
// checks of DeleteArtifact.
func (s *Service) DeleteArtifactName(ctx context.Context, name string) error {
	return retryConflict(func() error { return s.removeTags(ctx, name, "") })
}

func retryConflict(fn func() error) error {
	var err error
	for range maxDeleteTries {
		if err = fn(); !errors.Is(err, events.ErrConflict) {
			return err
		}
	}
	return err
}

// removeTags removes one tag of the artifact, or all of them when tag is "".
func (s *Service) removeTags(ctx context.Context, name, tag string) error {
	a, err := s.h.LoadArtifact(ctx, name)
	if err != nil {
		return err
	}
	tags, cmd := []string{tag}, engine.ArtifactCommand(engine.UntagArtifact{Name: name, Tag: tag, Version: a.Seq})
	if tag == "" {
		tags, cmd = slices.Sorted(maps.Keys(a.Tags)), engine.DeleteArtifact{Name: name, Version: a.Seq}
	} else if _, ok := a.Tags[tag]; !ok {
		return fmt.Errorf("artifact %s:%s: %w", name, tag, domain.ErrNotFound)
	}
	freed := s.freed(a, tags)
	if err := s.checkUnused(freed); err != nil {
		return err
	}
	if a, err = s.h.Artifact(ctx, cmd); err != nil {
		return err
	}
	if err := s.waitArtifacts(ctx, a.Seq); err != nil {
		return err
	}
	return s.prune(ctx, freed)
}

// deleteDigest removes every tag pointing at digest, then the module.
func (s *Service) deleteDigest(ctx context.Context, digest string) error {
	var names []string
	for _, row := range s.artifacts.Tagged(digest) {
		if !slices.Contains(names, row.Name) {
			names = append(names, row.Name)
		}
	}
	if len(names) == 0 {
		if _, err := s.getDigest(ctx, digest); err != nil {
			return err
		}
	}
	if err := s.checkUnused([]string{digest}); err != nil {
		return err
	}
	for _, name := range names {
		if err := s.untagDigest(ctx, name, digest); err != nil {
			return err
		}
	}
	return s.prune(ctx, []string{digest})
}

// untagDigest removes the tags of artifact name that point at digest, one
// by one, each checked against the state the one before left.
func (s *Service) untagDigest(ctx context.Context, name, digest string) error {
	a, err := s.h.LoadArtifact(ctx, name)
	if err != nil {
		return err
	}
	for _, tag := range slices.Sorted(maps.Keys(a.Tags)) {
		if a.Tags[tag] != digest {
			continue
		}
		if a, err = s.h.Artifact(ctx, engine.UntagArtifact{Name: name, Tag: tag, Version: a.Seq}); err != nil {
			return err
		}
	}
	return s.waitArtifacts(ctx, a.Seq)
}

// freed returns the digests no tag points at once the tags removed are
// gone from a.
func (s *Service) freed(a engine.Artifact, removed []string) []string {
	var out []string
	for _, tag := range removed {
		d := a.Tags[tag]
		if !slices.Contains(out, d) && !s.stillTagged(a, removed, d) {
			out = append(out, d)
		}
	}
	return out
}

// stillTagged reports whether a tag of a other than removed, or a tag of
// another artifact, points at d.
func (s *Service) stillTagged(a engine.Artifact, removed []string, d string) bool {
	for tag, td := range a.Tags {
		if td == d && !slices.Contains(removed, tag) {
			return true
		}
	}
	for _, row := range s.artifacts.Tagged(d) {
		if row.Name != a.Name {
			return true
		}
	}
	return false
}

// checkUnused refuses to free a module that a task (not deleted) uses.
func (s *Service) checkUnused(digests []string) error {
	for _, d := range digests {
		ids := s.tasksUsing(d)
		if len(ids) == 0 {
			continue
		}
		more := ""
		if len(ids) > 3 {
			ids, more = ids[:3], fmt.Sprintf(" and %d more", len(ids)-3)
		}
		return fmt.Errorf("module %s is used by task %s%s; delete those tasks first: %w", d, strings.Join(ids, ", "), more, domain.ErrInvalidState)
	}
	return nil
}

// tasksUsing returns the ids of the tasks whose module is digest.
func (s *Service) tasksUsing(digest string) []string {
	all, _ := s.tasks.List(0, math.MaxInt)
	var ids []string
	for _, t := range all {
		if t.Module == digest {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// prune deletes the modules that neither a tag nor a task uses, checked
// again once the catalog has caught up with the ARTIFACTS stream: one may
// have been tagged or used meanwhile.
func (s *Service) prune(ctx context.Context, digests []string) error {
	if len(digests) == 0 {
		return nil
	}
	seq, err := s.h.store.LastSeq(ctx, events.KindArtifact)
	if err != nil {
		return err
	}
	if err := s.waitArtifacts(ctx, seq); err != nil {
		return err
	}
	for _, d := range digests {
		if len(s.artifacts.Tagged(d)) > 0 || len(s.tasksUsing(d)) > 0 {
			continue
		}
		if err := s.modules.Delete(ctx, d); err != nil {
			return fmt.Errorf("delete module %s: %w", d, err)
		}
	}
	return nil
}
