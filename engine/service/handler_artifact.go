package service

import (
	"context"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Artifact executes an artifact command and returns the artifact's new
// state. Artifacts change rarely, so the state is loaded for every command
// rather than cached.
func (h *Handler) Artifact(ctx context.Context, cmd engine.ArtifactCommand) (engine.Artifact, error) {
	agg := events.ArtifactAggregate(cmd.ArtifactName())
	if err := engine.ValidateArtifactName(agg.ID); err != nil {
		return engine.Artifact{}, err
	}
	return execute(ctx, h, agg, newStateCache[engine.Artifact](1), func(a engine.Artifact) ([]events.Event, error) { return engine.DecideArtifact(a, cmd) })
}

// LoadArtifact returns the artifact called name as stored (a zero
// Artifact when it never existed).
func (h *Handler) LoadArtifact(ctx context.Context, name string) (engine.Artifact, error) {
	if err := engine.ValidateArtifactName(name); err != nil {
		return engine.Artifact{}, err
	}
	agg := events.ArtifactAggregate(name)
	if err := h.quarantine.Check(agg); err != nil {
		return engine.Artifact{}, err
	}
	a, _, err := state[engine.Artifact](ctx, h, agg, nil, fromStore)
	if err != nil {
		return a, h.unreadable(agg, err)
	}
	return a, nil
}
