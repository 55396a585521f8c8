package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/oci"
)

// resolver pulls the image a proplet asked for into the cache:
// outbound.ModuleResolver for the chunk server.
type resolver struct {
	oci      *oci.Client
	cache    *cache
	registry string // host relative names resolve against; "" for none
	log      *slog.Logger
	locks    keyedMutex // one pull per reference at a time
}

var _ outbound.ModuleResolver = (*resolver)(nil)

// ResolveModule asks the registry what appName points at now and pulls the
// module unless it is cached. Requests for one reference wait for each
// other, so proplets asking at once cause one download.
func (r *resolver) ResolveModule(ctx context.Context, appName string) (string, int64, error) {
	ref, err := qualify(appName, r.registry)
	if err != nil {
		return "", 0, err
	}
	defer r.locks.lock(ref)()
	start := time.Now()
	r.log.Info("pulling module", logApp, appName, logRef, ref)
	digest, size, err := oci.Import(ctx, r.oci, r.cache, ref)
	if err != nil {
		return "", 0, err
	}
	r.log.Info("module pulled", logApp, appName, logDigest, digest, logSize, size, "took", time.Since(start).Round(time.Millisecond))
	return digest, size, nil
}

// qualify turns what a proplet asked for into a full OCI reference: a name
// whose first path element is a host (it holds a "." or a ":", or is
// localhost) is taken as it is; any other is relative to registry.
func qualify(appName, registry string) (string, error) {
	switch {
	case wire.IsHTTPURL(appName):
		return "", fmt.Errorf("%q is a URL, not an image reference: proplets fetch URLs themselves", appName)
	case strings.ContainsAny(appName, " \t\r\n"):
		return "", fmt.Errorf("%q is not an image reference", appName)
	}
	first, rest, hasPath := strings.Cut(appName, "/")
	if hasPath && rest != "" && oci.IsRegistryHost(first) {
		return dockerHubRef(dockerHub(first), rest), nil
	}
	if registry == "" {
		return "", fmt.Errorf("%q names no registry and no registry URL is configured to resolve it against (PROXY_REGISTRY_URL)", appName)
	}
	return dockerHubRef(registry, appName), nil
}

// Docker Hub's registry answers at registry-1.docker.io, and keeps its
// official images under library/.
const dockerHubHost = "registry-1.docker.io"

// dockerHub maps Docker Hub's names to the host its registry answers at.
func dockerHub(host string) string {
	switch host {
	case "docker.io", "index.docker.io":
		return dockerHubHost
	}
	return host
}

// dockerHubRef joins host and the repository path (with its tag or
// digest), adding library/ to a one-element repository on Docker Hub.
func dockerHubRef(host, path string) string {
	if host == dockerHubHost && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	return host + "/" + path
}

// keyedMutex is a mutex per key, dropped when nobody holds or waits for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu    sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
