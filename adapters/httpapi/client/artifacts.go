package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine/domain"
)

// ErrDigestMismatch reports a download whose bytes do not have the digest
// the server announced.
var ErrDigestMismatch = errors.New("downloaded module does not match its digest")

// PushArtifact streams the module r to the catalog as name:tag (tag "" takes
// the tag from name, "vision:1.2", or "latest"). size is r's length when
// known (0 if not); progress, when not nil, is called with the bytes sent
// so far as they go.
func (c *Client) PushArtifact(ctx context.Context, name, tag string, r io.Reader, size int64, progress func(n int64)) (httpapi.Artifact, error) {
	if progress != nil {
		r = &countingReader{r: r, fn: progress}
	}
	q := url.Values{"name": {name}}
	if tag != "" {
		q.Set("tag", tag)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/artifacts?"+q.Encode(), r)
	if err != nil {
		return httpapi.Artifact{}, err
	}
	if size > 0 {
		req.ContentLength = size // else chunked, or what NewRequest found
	}
	req.Header.Set("Content-Type", "application/wasm")
	resp, err := c.hc.Do(req)
	if err != nil {
		return httpapi.Artifact{}, err
	}
	defer resp.Body.Close()
	var a httpapi.Artifact
	return a, decodeAnswer(resp, &a)
}

// countingReader reports how many bytes were read through it.
type countingReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.fn(c.n)
	}
	return n, err
}

// ListArtifacts returns a page of the catalog; limit 0 asks for the
// server's default.
func (c *Client) ListArtifacts(ctx context.Context, offset, limit int) (httpapi.ArtifactList, error) {
	var l httpapi.ArtifactList
	return l, c.do(ctx, http.MethodGet, "/artifacts"+pageQuery(offset, limit), nil, &l)
}

// GetArtifact returns what ref names ("name:tag", "name" or "sha256:<hex>").
func (c *Client) GetArtifact(ctx context.Context, ref string) (httpapi.Artifact, error) {
	var a httpapi.Artifact
	return a, c.do(ctx, http.MethodGet, artifactPath(ref), nil, &a)
}

// DownloadArtifact writes the module ref names to w and returns its digest
// and size. The bytes are checked against the digest the server announced
// (ErrDigestMismatch); w has then received them already.
func (c *Client) DownloadArtifact(ctx context.Context, ref string, w io.Writer) (string, int64, error) {
	resp, err := c.send(ctx, http.MethodGet, artifactPath(ref)+"/content", "", nil)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, errorFrom(resp)
	}
	h := domain.NewHasher()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return "", n, fmt.Errorf("download %s: %w", ref, err)
	}
	got := h.Digest()
	if want := resp.Header.Get(httpapi.HeaderModuleDigest); want != "" && want != got {
		return got, n, fmt.Errorf("%w: %s announced, %s received", ErrDigestMismatch, want, got)
	}
	return got, n, nil
}

// DeleteArtifact removes a tag ("name:tag", or "name" for its latest tag),
// or every tag pointing at "sha256:<hex>"; a module no tag points at any
// more is deleted. The server refuses (409) while a task uses the module.
func (c *Client) DeleteArtifact(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, artifactPath(ref), nil, nil)
}

// DeleteArtifactName removes every tag of the artifact name.
func (c *Client) DeleteArtifactName(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, artifactPath(name)+"?all=true", nil, nil)
}

// ImportArtifact has the server pull req.Ref from an OCI registry into its
// store and tag it (as req.Name, or a name:tag taken from the reference).
// A registry failure is an *Error with StatusCode 502 (refused, unreachable)
// or 404 (unknown repository, tag or digest).
func (c *Client) ImportArtifact(ctx context.Context, req httpapi.ImportRequest) (httpapi.Artifact, error) {
	var a httpapi.Artifact
	return a, c.do(ctx, http.MethodPost, "/artifacts/import", req, &a)
}

// ExportArtifact has the server push the module ref names to an OCI
// registry as req.To, a wasm artifact.
func (c *Client) ExportArtifact(ctx context.Context, ref string, req httpapi.ExportRequest) (httpapi.ExportResult, error) {
	var r httpapi.ExportResult
	return r, c.do(ctx, http.MethodPost, artifactPath(ref)+"/export", req, &r)
}

func artifactPath(ref string) string { return "/artifacts/" + url.PathEscape(ref) }
