package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine"
)

// moduleResolver finds the module a task image or a proplet's registry
// request names: a stored digest or catalog name:tag first, else an OCI
// reference, imported into the object store once per digest.
type moduleResolver struct {
	svc     *engine.Service
	oci     *oci.Client
	modules *artifacts.Store
	log     *slog.Logger
}

func newModuleResolver(cfg Config, svc *engine.Service, modules *artifacts.Store, log *slog.Logger) (*moduleResolver, error) {
	opts := []oci.Option{oci.WithPlainHTTP(cfg.OCIPlainHTTP), oci.WithLogger(log)}
	switch {
	case cfg.OCIToken != "":
		opts = append(opts, oci.WithBearerToken(cfg.OCIToken))
	case cfg.OCIUsername != "":
		opts = append(opts, oci.WithBasicAuth(cfg.OCIUsername, cfg.OCIPassword))
	}
	c, err := oci.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("oci client: %w", err)
	}
	return &moduleResolver{svc: svc, oci: c, modules: modules, log: log}, nil
}

// ResolveModule implements mqtt.ModuleResolver.
func (r *moduleResolver) ResolveModule(ctx context.Context, ref string) (string, int64, error) {
	digest, size, err := r.svc.ResolveModule(ctx, ref)
	if err == nil || !errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrInvalid) {
		return digest, size, err
	}
	if !looksLikeOCI(ref) {
		return "", 0, fmt.Errorf("module %q is not stored (push it with `jetprop artifact push`, or name an OCI reference host/repo:tag): %w", ref, err)
	}
	r.log.Info("importing module from OCI registry", "ref", ref)
	return oci.Import(ctx, r.oci, r.modules, ref)
}

// looksLikeOCI reports whether ref names a registry host: the part before
// the first "/" holds a dot or a port, or is localhost.
func looksLikeOCI(ref string) bool {
	host, rest, ok := strings.Cut(ref, "/")
	return ok && rest != "" && (strings.ContainsAny(host, ".:") || host == "localhost")
}
