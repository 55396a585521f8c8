package engine

import (
	"context"

	"github.com/jetprop/jetprop/events"
)

// Artifact executes an artifact command and returns the artifact's new
// state. Artifacts change rarely, so the state is loaded for every command
// rather than cached.
func (h *Handler) Artifact(ctx context.Context, cmd ArtifactCommand) (Artifact, error) {
	agg := events.ArtifactAggregate(cmd.ArtifactName())
	if err := ValidateArtifactName(agg.ID); err != nil {
		return Artifact{}, err
	}
	return execute(ctx, h, agg, newStateCache[Artifact](1), func(a Artifact) ([]events.Event, error) { return DecideArtifact(a, cmd) })
}

// LoadArtifact returns the artifact called name as stored (a zero
// Artifact when it never existed).
func (h *Handler) LoadArtifact(ctx context.Context, name string) (Artifact, error) {
	if err := ValidateArtifactName(name); err != nil {
		return Artifact{}, err
	}
	return load[Artifact](ctx, h, events.ArtifactAggregate(name))
}
