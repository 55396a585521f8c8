package httpapi

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
)

// HeaderModuleDigest carries the sha256 digest of a module download, so a
// client can check what it received (the ETag holds it too).
const HeaderModuleDigest = "Jp-Module-Digest"

// Artifact is a name:tag of the artifact catalog and the module it points
// at. A module asked for by digest that no tag points at has no name.
type Artifact struct {
	Name      string           `json:"name,omitempty"`
	Tag       string           `json:"tag,omitempty"`
	Digest    string           `json:"digest"`
	Size      int64            `json:"size"`
	MediaType string           `json:"media_type,omitempty"`
	Source    string           `json:"source,omitempty"`
	CreatedAt time.Time        `json:"created_at,omitzero"` // when the tag was set to this digest
	History   []ArtifactChange `json:"history,omitempty"`   // GET /artifacts/{ref}: the tag's changes, oldest first
}

// ArtifactChange is one change of a tag: from Time on it pointed at Digest
// ("" once removed) instead of Previous.
type ArtifactChange struct {
	Digest   string    `json:"digest,omitempty"`
	Previous string    `json:"previous,omitempty"`
	Time     time.Time `json:"time"`
}

// ArtifactList is a page of the catalog, sorted by name and tag.
type ArtifactList struct {
	Offset    int        `json:"offset"`
	Limit     int        `json:"limit"`
	Total     int        `json:"total"`
	Artifacts []Artifact `json:"artifacts"`
}

// RegistryAuth says how the server reaches an OCI registry for one import
// or export. Without credentials the server's own (--oci-username, ...)
// apply. The server never logs or returns them.
type RegistryAuth struct {
	PlainHTTP bool   `json:"plain_http,omitempty"` // HTTP instead of HTTPS (loopback and lab registries)
	Username  string `json:"username,omitempty"`   // basic auth, with password
	Password  string `json:"password,omitempty"`
	Token     string `json:"token,omitempty"` // a registry access token, instead of username and password
}

func (a RegistryAuth) options() service.ImportOptions {
	return service.ImportOptions{PlainHTTP: a.PlainHTTP, Username: a.Username, Password: a.Password, Token: a.Token}
}

// ImportRequest is the body of POST /artifacts/import: the OCI reference to
// pull (host/repository:tag or host/repository@sha256:<hex>, honoured as
// written) and the name:tag to store it under (default: the repository's
// last path element and the reference's tag; "sha256-<12 hex>" for a
// reference by digest).
type ImportRequest struct {
	Ref  string `json:"ref"`
	Name string `json:"name,omitempty"`
	RegistryAuth
}

// ExportRequest is the body of POST /artifacts/{ref}/export: the OCI
// reference (host/repository:tag) to push the module to.
type ExportRequest struct {
	To string `json:"to"`
	RegistryAuth
}

// ExportResult is the answer of POST /artifacts/{ref}/export.
type ExportResult struct {
	ManifestDigest string `json:"manifest_digest"` // the OCI manifest the registry stored
	Digest         string `json:"digest"`          // the module (the manifest's one layer)
	To             string `json:"to"`
}

// maxRequestJSON bounds the JSON body of import and export requests.
const maxRequestJSON = 64 << 10

// ArtifactFrom returns the API view of a catalog row.
func ArtifactFrom(r engine.ArtifactTag) Artifact {
	a := Artifact{
		Name: r.Name, Tag: r.Tag, Digest: r.Digest, Size: r.Size,
		MediaType: r.MediaType, Source: r.Source, CreatedAt: r.Created,
	}
	for _, c := range r.History {
		a.History = append(a.History, ArtifactChange{Digest: c.Digest, Previous: c.Previous, Time: c.Time})
	}
	return a
}

// importArtifact pulls a module from an OCI registry into the store and
// tags it: 201 with the artifact (also when the digest was stored already).
// An unknown repository, tag or digest is 404 with the registry's message;
// a registry that refuses the credentials, cannot be reached or serves
// bad content is 502; an invalid reference or content that is not wasm is
// 400; a module over the server's --max-module is 413.
func (a *api) importArtifact(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxRequestJSON), &req); err != nil {
		a.fail(w, r, err)
		return
	}
	row, err := a.svc.ImportArtifact(r.Context(), req.Ref, req.Name, req.options())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/artifacts/"+url.PathEscape(row.Name+":"+row.Tag))
	writeJSON(w, http.StatusCreated, ArtifactFrom(row))
}

// exportArtifact pushes a stored module to an OCI registry as a wasm
// artifact; errors as for importArtifact.
func (a *api) exportArtifact(w http.ResponseWriter, r *http.Request) {
	var req ExportRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxRequestJSON), &req); err != nil {
		a.fail(w, r, err)
		return
	}
	row, manifest, err := a.svc.ExportArtifact(r.Context(), r.PathValue("ref"), req.To, req.options())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ExportResult{ManifestDigest: manifest, Digest: row.Digest, To: req.To})
}

// pushArtifact streams a module into the store and tags it: ?name=vision
// &tag=1.2 (or ?name=vision:1.2; the tag defaults to latest). The body is
// the module (application/wasm or application/octet-stream) or a
// multipart form with the field "file"; it is never held whole in memory.
func (a *api) pushArtifact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, tag := q.Get("name"), q.Get("tag")
	if name == "" {
		a.fail(w, r, badRequest("name is required: ?name=vision&tag=1.2 or ?name=vision:1.2"))
		return
	}
	err := limitBody(w, r, a.maxBody)
	var module io.ReadCloser
	if err == nil {
		module, err = moduleBody(r)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer module.Close()
	row, err := a.svc.PushArtifact(r.Context(), name, tag, module)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/artifacts/"+url.PathEscape(row.Name+":"+row.Tag))
	writeJSON(w, http.StatusCreated, ArtifactFrom(row))
}

// moduleBody returns the module of a request: the body itself, or the
// multipart field "file".
func moduleBody(r *http.Request) (io.ReadCloser, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/wasm" || ct == "application/octet-stream" {
		return r.Body, nil
	}
	return filePart(r)
}

func (a *api) listArtifacts(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rows, total := a.svc.ListArtifacts(p.offset, p.limit)
	out := ArtifactList{Offset: p.offset, Limit: p.limit, Total: total, Artifacts: make([]Artifact, 0, len(rows))}
	for _, row := range rows {
		out.Artifacts = append(out.Artifacts, ArtifactFrom(row))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getArtifact(w http.ResponseWriter, r *http.Request) {
	row, err := a.svc.GetArtifact(r.Context(), r.PathValue("ref"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ArtifactFrom(row))
}

// artifactContent streams the module from the object store.
func (a *api) artifactContent(w http.ResponseWriter, r *http.Request) {
	row, module, err := a.svc.OpenArtifact(r.Context(), r.PathValue("ref"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer module.Close()
	h := w.Header()
	h.Set("Content-Type", engine.MediaTypeWasm)
	h.Set("Content-Length", strconv.FormatInt(row.Size, 10))
	h.Set("ETag", `"`+row.Digest+`"`)
	h.Set(HeaderModuleDigest, row.Digest)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // a large module to a slow client
	if _, err := io.Copy(w, module); err != nil && r.Context().Err() == nil {
		// The status is sent: the client sees a body shorter than its length.
		a.log.Error("module download failed", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyErr, err)
	}
}

// deleteArtifact removes a tag (name:tag, or name for its latest tag),
// every tag of a name (?all=true), or every tag pointing at a digest.
func (a *api) deleteArtifact(w http.ResponseWriter, r *http.Request) {
	all, err := parseBool(r.URL.Query().Get("all"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ref := r.PathValue("ref")
	if all {
		err = a.svc.DeleteArtifactName(r.Context(), ref)
	} else {
		err = a.svc.DeleteArtifact(r.Context(), ref)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest("%q: want true or false", s)
	}
	return b, nil
}
