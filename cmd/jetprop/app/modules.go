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
	// current brings the artifacts read model up to what the stream's
	// leader holds; nil: the model is taken as it is.
	current func(context.Context) error
}

func newModuleResolver(svc *service.Service, imp *Importer, current func(context.Context) error) *moduleResolver {
	return &moduleResolver{svc: svc, imp: imp, current: current}
}

// ResolveModule implements outbound.ModuleResolver. A name the read model
// does not know is looked up again once the model holds what the leader
// of ARTIFACTS does: on a cluster the model may follow a replica that is
// behind, and "not stored" fails the task for good.
func (r *moduleResolver) ResolveModule(ctx context.Context, ref string) (string, int64, error) {
	digest, size, err := r.svc.ResolveModule(ctx, ref)
	if errors.Is(err, domain.ErrNotFound) && r.current != nil {
		if cerr := r.current(ctx); cerr != nil {
			return "", 0, cerr // not confirmed: the dispatcher tries again
		}
		digest, size, err = r.svc.ResolveModule(ctx, ref)
	}
	if err == nil || !errors.Is(err, domain.ErrNotFound) && !errors.Is(err, domain.ErrInvalid) {
		return digest, size, err
	}
	if first, rest, ok := strings.Cut(ref, "/"); !ok || rest == "" || !oci.IsRegistryHost(first) {
		return "", 0, fmt.Errorf("module %q is not stored (push it with `jetprop artifact push`, or name an OCI reference host/repo:tag): %w", ref, err)
	}
	return r.imp.Import(ctx, ref, service.ImportOptions{})
}
