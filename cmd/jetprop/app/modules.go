package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
)

// moduleResolver finds the module a task image or a proplet's registry
// request names: a stored digest or catalog name:tag first, else an OCI
// reference, imported into the object store once per digest with the
// server's default registry options.
type moduleResolver struct {
	svc *service.Service
	imp *Importer
}

func newModuleResolver(svc *service.Service, imp *Importer) *moduleResolver {
	return &moduleResolver{svc: svc, imp: imp}
}

// ResolveModule implements outbound.ModuleResolver.
func (r *moduleResolver) ResolveModule(ctx context.Context, ref string) (string, int64, error) {
	digest, size, err := r.svc.ResolveModule(ctx, ref)
	if err == nil || !errors.Is(err, domain.ErrNotFound) && !errors.Is(err, domain.ErrInvalid) {
		return digest, size, err
	}
	if first, rest, ok := strings.Cut(ref, "/"); !ok || rest == "" || !oci.IsRegistryHost(first) {
		return "", 0, fmt.Errorf("module %q is not stored (push it with `jetprop artifact push`, or name an OCI reference host/repo:tag): %w", ref, err)
	}
	return r.imp.Import(ctx, ref, service.ImportOptions{})
}
