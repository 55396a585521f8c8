package service

import (
	"context"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Token executes an API token command and returns the token's new state.
// Tokens change rarely, so the state is loaded for every command rather
// than cached.
func (h *Handler) Token(ctx context.Context, cmd engine.TokenCommand) (engine.Token, error) {
	return execute(ctx, h, events.TokenAggregate(cmd.TokenID()), newStateCache[engine.Token](1),
		func(t engine.Token) ([]events.Event, error) { return engine.DecideToken(t, cmd) })
}
