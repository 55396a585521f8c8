package engine_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// tokenOf folds evs into the token "tk1", one second and one sequence apart.
func tokenOf(evs ...events.Event) engine.Token {
	var tok engine.Token
	for i, ev := range evs {
		env := events.Envelope{
			ID: fmt.Sprintf("e%d", i), Type: ev.EventType(), Aggregate: events.TokenAggregate("tk1"),
			Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i + 1),
		}
		tok = tok.Apply(env, ev)
	}
	return tok
}

var (
	secretA   = engine.FormatToken(bytes.Repeat([]byte{1}, engine.TokenBytes))
	hashA     = engine.HashToken(secretA)
	createdA  = events.TokenCreated{Name: "ci", Role: domain.RoleOperator, Hash: hashA, CreatedBy: "tk0"}
	tokNone   = engine.Token{}
	tokActive = tokenOf(createdA)
	tokGone   = tokenOf(createdA, events.TokenRevoked{RevokedBy: "tk0"})
)

type otherTokenCommand struct{}

func (otherTokenCommand) TokenID() string { return "tk1" }

func TestDecideToken(t *testing.T) {
	create := func(name string, role domain.Role, hash string) engine.CreateToken {
		return engine.CreateToken{ID: "tk1", Name: name, Role: role, Hash: hash, By: "tk0"}
	}
	tests := []struct {
		name    string
		token   engine.Token
		cmd     engine.TokenCommand
		want    []events.Event
		wantErr error
	}{
		{name: "create", token: tokNone, cmd: create("ci", domain.RoleOperator, hashA), want: evs(createdA)},
		{name: "create in dev mode: nobody created it", token: tokNone, cmd: engine.CreateToken{ID: "tk1", Name: "ci", Role: domain.RoleViewer, Hash: hashA},
			want: evs(events.TokenCreated{Name: "ci", Role: domain.RoleViewer, Hash: hashA})},
		{name: "create again, same token: nothing to do", token: tokActive, cmd: create("ci", domain.RoleOperator, hashA)},
		{name: "create again, other hash", token: tokActive, cmd: create("ci", domain.RoleOperator, strings.Repeat("0", 64)), wantErr: domain.ErrExists},
		{name: "create again, other role", token: tokActive, cmd: create("ci", domain.RoleAdmin, hashA), wantErr: domain.ErrExists},
		{name: "create a revoked id again", token: tokGone, cmd: create("ci", domain.RoleOperator, strings.Repeat("0", 64)), wantErr: domain.ErrExists},
		{name: "name with spaces inside", token: tokNone, cmd: create("ci runner 2", domain.RoleViewer, hashA),
			want: evs(events.TokenCreated{Name: "ci runner 2", Role: domain.RoleViewer, Hash: hashA, CreatedBy: "tk0"})},
		{name: "empty name", token: tokNone, cmd: create("", domain.RoleViewer, hashA), wantErr: domain.ErrInvalid},
		{name: "name with a newline", token: tokNone, cmd: create("a\nb", domain.RoleViewer, hashA), wantErr: domain.ErrInvalid},
		{name: "name with a leading space", token: tokNone, cmd: create(" ci", domain.RoleViewer, hashA), wantErr: domain.ErrInvalid},
		{name: "name too long", token: tokNone, cmd: create(strings.Repeat("n", engine.MaxTokenName+1), domain.RoleViewer, hashA), wantErr: domain.ErrInvalid},
		{name: "no role", token: tokNone, cmd: create("ci", "", hashA), wantErr: domain.ErrInvalid},
		{name: "unknown role", token: tokNone, cmd: create("ci", "root", hashA), wantErr: domain.ErrInvalid},
		{name: "the secret instead of its hash", token: tokNone, cmd: create("ci", domain.RoleViewer, secretA), wantErr: domain.ErrInvalid},
		{name: "upper-case hash", token: tokNone, cmd: create("ci", domain.RoleViewer, strings.ToUpper(hashA)), wantErr: domain.ErrInvalid},
		{name: "short hash", token: tokNone, cmd: create("ci", domain.RoleViewer, hashA[:62]), wantErr: domain.ErrInvalid},
		{name: "id with a dot", token: tokNone, cmd: engine.CreateToken{ID: "a.b", Name: "ci", Role: domain.RoleViewer, Hash: hashA}, wantErr: domain.ErrInvalid},

		{name: "revoke", token: tokActive, cmd: engine.RevokeToken{ID: "tk1", By: "tk0"}, want: evs(events.TokenRevoked{RevokedBy: "tk0"})},
		{name: "revoke again: nothing to do", token: tokGone, cmd: engine.RevokeToken{ID: "tk1", By: "tk9"}},
		{name: "revoke unknown", token: tokNone, cmd: engine.RevokeToken{ID: "tk1"}, wantErr: domain.ErrNotFound},
		{name: "unknown command", token: tokActive, cmd: otherTokenCommand{}, wantErr: domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.DecideToken(tc.token, tc.cmd)
			checkErr(t, err, tc.wantErr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestToken_Apply(t *testing.T) {
	want := engine.Token{ID: "tk1", Name: "ci", Role: domain.RoleOperator, Hash: hashA, CreatedAt: t0, CreatedBy: "tk0", Seq: 1}
	sameState(t, "created", tokActive, want)
	if !tokActive.Active() || tokNone.Exists() {
		t.Fatalf("active %v, none exists %v", tokActive.Active(), tokNone.Exists())
	}
	want.Revoked, want.RevokedAt, want.RevokedBy, want.Seq = true, t0.Add(time.Second), "tk0", 2
	sameState(t, "revoked", tokGone, want)
	if tokGone.Active() || !tokGone.Exists() {
		t.Fatalf("revoked token: active %v exists %v", tokGone.Active(), tokGone.Exists())
	}
}

func TestToken_Format(t *testing.T) {
	if !strings.HasPrefix(secretA, engine.TokenPrefix) || !engine.WellFormedToken(secretA) {
		t.Fatalf("FormatToken wrote %q, which is not well formed", secretA)
	}
	tests := []struct {
		name  string
		token string
		want  bool
	}{
		{"formatted", secretA, true},
		{"empty", "", false},
		{"prefix only", engine.TokenPrefix, false},
		{"no prefix", strings.TrimPrefix(secretA, engine.TokenPrefix), false},
		{"other prefix", "jpx_" + strings.TrimPrefix(secretA, engine.TokenPrefix), false},
		{"one character short", secretA[:len(secretA)-1], false},
		{"one character more", secretA + "A", false},
		{"standard base64", strings.Replace(secretA, "A", "+", 1), false},
		{"padding", secretA[:len(secretA)-1] + "=", false},
		{"hash instead", hashA, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := engine.WellFormedToken(tc.token); got != tc.want {
				t.Fatalf("WellFormedToken(%q) = %v, want %v", tc.token, got, tc.want)
			}
		})
	}
	if h := engine.HashToken(secretA); h != hashA || len(h) != 64 || engine.HashToken(secretA+"x") == h {
		t.Fatalf("hash %q", h)
	}
}
