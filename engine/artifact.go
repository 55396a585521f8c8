package engine

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// DefaultTag is the tag of a reference that names none ("vision" is
// "vision:latest").
const DefaultTag = "latest"

// MediaTypeWasm is the media type of a module stored as it was uploaded.
const MediaTypeWasm = "application/wasm"

// SourceUpload is the source of a module pushed through the API.
const SourceUpload = "upload"

// ArtifactRef names a module: by Digest, or by artifact Name and Tag.
type ArtifactRef struct {
	Name   string
	Tag    string
	Digest string
}

// String writes the reference as ParseArtifactRef reads it.
func (r ArtifactRef) String() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Name + ":" + r.Tag
}

// ParseArtifactRef reads "sha256:<hex>", "name:tag" or "name" (which is
// "name:latest"). Names are letters, digits, '-' and '_'; tags are OCI tags
// (letters, digits, '_', '.', '-', not starting with '.' or '-').
func ParseArtifactRef(s string) (ArtifactRef, error) {
	if strings.HasPrefix(s, domain.DigestPrefix) {
		if !domain.ValidDigest(s) {
			return ArtifactRef{}, fmt.Errorf("%w: %q is not a digest (sha256: and 64 lowercase hex digits)", domain.ErrInvalid, s)
		}
		return ArtifactRef{Digest: s}, nil
	}
	name, tag, ok := strings.Cut(s, ":")
	if !ok {
		tag = DefaultTag
	}
	r := ArtifactRef{Name: name, Tag: tag}
	if err := r.Validate(); err != nil {
		return ArtifactRef{}, err
	}
	return r, nil
}

// Validate checks the name and the tag.
func (r ArtifactRef) Validate() error {
	if err := ValidateArtifactName(r.Name); err != nil {
		return err
	}
	return validateTag(r.Tag)
}

// ValidateArtifactName checks an artifact name (the aggregate id of its
// events).
func ValidateArtifactName(name string) error {
	err := events.ValidateID(name)
	if err == nil && (strings.ContainsAny(name, ":@") || name == "sha256") {
		err = fmt.Errorf("%q may not contain ':' or '@' or be \"sha256\"", name)
	}
	if err != nil {
		return fmt.Errorf("%w: artifact name: %v (allowed: letters, digits, - and _)", domain.ErrInvalid, err)
	}
	return nil
}

func validateTag(tag string) error {
	ok := tag != "" && len(tag) <= 128 && tag[0] != '.' && tag[0] != '-'
	for _, r := range tag {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
	}
	if !ok {
		return fmt.Errorf("%w: tag %q: want 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", domain.ErrInvalid, tag)
	}
	return nil
}

// Artifact is one artifact name, folded from its events: tags pointing at
// modules in the MODULES object store, and how the tags moved.
type Artifact struct {
	Name      string                    `json:"name"`
	Tags      map[string]string         `json:"tags"`    // tag -> digest
	Modules   map[string]ArtifactModule `json:"modules"` // digest -> a module stored under this name
	History   []TagChange               `json:"history"` // every tag change, oldest first
	CreatedAt time.Time                 `json:"created_at"`
	UpdatedAt time.Time                 `json:"updated_at"`
	Deleted   bool                      `json:"deleted,omitempty"`
	Seq       uint64                    `json:"seq"`
}

// ArtifactModule is a module stored under an artifact's name.
type ArtifactModule struct {
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	MediaType string    `json:"media_type,omitempty"`
	Source    string    `json:"source,omitempty"`
	StoredAt  time.Time `json:"stored_at"`
}

// TagChange is one entry of an artifact's history: from Time on, Tag
// pointed at Digest ("" when the tag was removed) instead of Previous.
type TagChange struct {
	Tag      string    `json:"tag"`
	Digest   string    `json:"digest,omitempty"`
	Previous string    `json:"previous,omitempty"`
	Time     time.Time `json:"time"`
}

// ArtifactTag is one name:tag and the module it points at: a row of the
// artifact catalog.
type ArtifactTag struct {
	Name      string      `json:"name,omitempty"`
	Tag       string      `json:"tag,omitempty"`
	Digest    string      `json:"digest"`
	Size      int64       `json:"size"`
	MediaType string      `json:"media_type,omitempty"`
	Source    string      `json:"source,omitempty"`
	Created   time.Time   `json:"created_at,omitzero"` // when the tag was set to this digest
	History   []TagChange `json:"history,omitempty"`   // Service.GetArtifact only: the tag's changes, oldest first
}

// Exists reports whether the artifact has tags (it was stored and not deleted).
func (a Artifact) Exists() bool { return a.Seq != 0 && !a.Deleted }

// LastSeq is the sequence of the last event applied.
func (a Artifact) LastSeq() uint64 { return a.Seq }

// Lookup returns the catalog row of a tag.
func (a Artifact) Lookup(tag string) (ArtifactTag, bool) {
	d, ok := a.Tags[tag]
	if !ok {
		return ArtifactTag{}, false
	}
	m := a.Modules[d]
	row := ArtifactTag{Name: a.Name, Tag: tag, Digest: d, Size: m.Size, MediaType: m.MediaType, Source: m.Source}
	for _, c := range slices.Backward(a.History) {
		if c.Tag == tag {
			row.Created = c.Time
			break
		}
	}
	return row, true
}

// Rows returns the catalog rows of every tag, sorted by tag.
func (a Artifact) Rows() []ArtifactTag {
	out := make([]ArtifactTag, 0, len(a.Tags))
	for _, tag := range slices.Sorted(maps.Keys(a.Tags)) {
		row, _ := a.Lookup(tag)
		out = append(out, row)
	}
	return out
}

// TagHistory returns the changes of one tag, oldest first.
func (a Artifact) TagHistory(tag string) []TagChange {
	var out []TagChange
	for _, c := range a.History {
		if c.Tag == tag {
			out = append(out, c)
		}
	}
	return out
}

// Apply folds one event into the artifact. It never changes the maps or
// the history of a (states are shared by caches and read models): it
// returns copies.
func (a Artifact) Apply(env events.Envelope, ev events.Event) Artifact {
	if !a.Exists() { // a new name, or one used again after a delete: the history goes on
		a = Artifact{Name: env.Aggregate.ID, CreatedAt: env.Time, History: a.History}
	}
	a.Seq, a.UpdatedAt = env.Seq, env.Time
	switch e := ev.(type) {
	case events.ArtifactStored:
		m := ArtifactModule{Digest: e.Digest, Size: e.Size, MediaType: e.MediaType, Source: e.Source, StoredAt: env.Time}
		a.Modules = with(a.Modules, e.Digest, m)
	case events.ArtifactTagged:
		a.Tags = with(a.Tags, e.Tag, e.Digest)
		a.History = append(slices.Clip(a.History), TagChange{Tag: e.Tag, Digest: e.Digest, Previous: e.Previous, Time: env.Time})
	case events.ArtifactUntagged:
		a.Tags = maps.Clone(a.Tags)
		delete(a.Tags, e.Tag)
		a.History = append(slices.Clip(a.History), TagChange{Tag: e.Tag, Previous: e.Digest, Time: env.Time})
	case events.ArtifactDeleted:
		a.Deleted, a.Tags, a.Modules = true, nil, nil
	}
	return a
}

// with returns a copy of m with k set to v.
func with[V any](m map[string]V, k string, v V) map[string]V {
	m = maps.Clone(m)
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// Artifact commands.
type (
	// TagArtifact points Name:Tag at a module already in the object store,
	// recording the module under the name first if it is new there.
	TagArtifact struct {
		Name      string
		Tag       string
		Digest    string
		Size      int64
		MediaType string // default MediaTypeWasm
		Source    string // "upload", or the reference it was imported from
	}
	// UntagArtifact removes a tag; removing the last one deletes the artifact.
	UntagArtifact struct {
		Name    string
		Tag     string
		Version uint64 // when not 0, refuse unless the artifact is still at this Seq
	}
	// DeleteArtifact removes every tag of the artifact.
	DeleteArtifact struct {
		Name    string
		Version uint64 // when not 0, refuse unless the artifact is still at this Seq
	}
)

// ArtifactCommand is any of the artifact commands.
type ArtifactCommand interface{ ArtifactName() string }

func (c TagArtifact) ArtifactName() string    { return c.Name }
func (c UntagArtifact) ArtifactName() string  { return c.Name }
func (c DeleteArtifact) ArtifactName() string { return c.Name }

// DecideArtifact returns the events cmd causes on a. No events and no error
// means the command is already satisfied (the tag points at the digest).
// Events never depend on map order: tags are visited sorted.
func DecideArtifact(a Artifact, cmd ArtifactCommand) ([]events.Event, error) {
	if err := ValidateArtifactName(cmd.ArtifactName()); err != nil {
		return nil, err
	}
	switch c := cmd.(type) {
	case TagArtifact:
		return decideTag(a, c)
	case UntagArtifact:
		return decideUntag(a, c)
	case DeleteArtifact:
		if err := checkArtifact(a, c.Name, c.Version); err != nil {
			return nil, err
		}
		var out []events.Event
		for _, tag := range slices.Sorted(maps.Keys(a.Tags)) {
			out = append(out, events.ArtifactUntagged{Tag: tag, Digest: a.Tags[tag]})
		}
		return append(out, events.ArtifactDeleted{}), nil
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}

func decideTag(a Artifact, c TagArtifact) ([]events.Event, error) {
	if err := validateTag(c.Tag); err != nil {
		return nil, err
	}
	if !domain.ValidDigest(c.Digest) || c.Size <= 0 {
		return nil, fmt.Errorf("%w: module %q of %d bytes: want a sha256 digest and a size", domain.ErrInvalid, c.Digest, c.Size)
	}
	var out []events.Event
	m, known := a.Modules[c.Digest]
	switch {
	case !known:
		out = append(out, events.ArtifactStored{Digest: c.Digest, Size: c.Size, MediaType: cmp.Or(c.MediaType, MediaTypeWasm), Source: c.Source})
	case m.Size != c.Size:
		return nil, fmt.Errorf("%w: %s is stored with %d bytes, not %d", domain.ErrInvalid, c.Digest, m.Size, c.Size)
	}
	if prev := a.Tags[c.Tag]; prev != c.Digest {
		out = append(out, events.ArtifactTagged{Tag: c.Tag, Digest: c.Digest, Previous: prev})
	}
	return out, nil
}

func decideUntag(a Artifact, c UntagArtifact) ([]events.Event, error) {
	if err := checkArtifact(a, c.Name, c.Version); err != nil {
		return nil, err
	}
	d, ok := a.Tags[c.Tag]
	if !ok {
		return nil, fmt.Errorf("artifact %s:%s: %w", c.Name, c.Tag, domain.ErrNotFound)
	}
	out := []events.Event{events.ArtifactUntagged{Tag: c.Tag, Digest: d}}
	if len(a.Tags) == 1 {
		out = append(out, events.ArtifactDeleted{})
	}
	return out, nil
}

// checkArtifact refuses a command on an artifact that does not exist, or
// that moved on since the caller checked it at version.
func checkArtifact(a Artifact, name string, version uint64) error {
	if !a.Exists() {
		return fmt.Errorf("artifact %s: %w", name, domain.ErrNotFound)
	}
	if version != 0 && version != a.Seq {
		return fmt.Errorf("artifact %s changed since it was checked (version %d, now %d): %w", name, version, a.Seq, events.ErrConflict)
	}
	return nil
}
