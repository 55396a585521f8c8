package service

import (
	"context"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Secret executes a secret command and returns the secret's new state. The
// name is checked before it becomes a subject; secrets change rarely, so
// the state is loaded for every command rather than cached.
func (h *Handler) Secret(ctx context.Context, cmd engine.SecretCommand) (engine.Secret, error) {
	if err := engine.ValidateSecretName(cmd.SecretName()); err != nil {
		return engine.Secret{}, err
	}
	return execute(ctx, h, events.SecretAggregate(cmd.SecretName()), newStateCache[engine.Secret](1),
		func(s engine.Secret) ([]events.Event, error) { return engine.DecideSecret(s, cmd) })
}
