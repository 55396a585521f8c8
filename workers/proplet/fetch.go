package proplet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Fetch errors.
var (
	// ErrNoModule: a start carries neither file nor image_url.
	ErrNoModule = errors.New("proplet: start carries neither file nor image_url")
	// ErrModuleTooLarge: a fetched module is larger than the configured cap.
	ErrModuleTooLarge = errors.New("proplet: module too large")
)

// Fetcher gets the module an http(s) image_url names. Other image_urls
// (OCI references, digests, name:tag) come in chunks over the registry
// topics (downloads.go).
type Fetcher interface {
	Fetch(ctx context.Context, ref string) ([]byte, error)
}

// fetchTimeout bounds one HTTP download (the task's own context may end it
// sooner).
const fetchTimeout = 5 * time.Minute

// httpFetcher downloads http(s) URLs directly.
type httpFetcher struct {
	client   *http.Client
	maxBytes int64
}

var _ Fetcher = (*httpFetcher)(nil)

func (h *httpFetcher) Fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("proplet: fetch %s: %w", url, err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("proplet: fetch module: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("proplet: fetch %s: %s", url, resp.Status)
	}
	return readCapped(resp.Body, h.maxBytes)
}

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("proplet: fetch module: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrModuleTooLarge, limit)
	}
	return b, nil
}
