package engine_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// secretOf folds evs into the secret "db", one second and one sequence
// apart.
func secretOf(evs ...events.Event) engine.Secret {
	var s engine.Secret
	for i, ev := range evs {
		env := events.Envelope{
			ID: fmt.Sprintf("e%d", i), Type: ev.EventType(), Aggregate: events.SecretAggregate("db"),
			Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i + 1),
		}
		s = s.Apply(env, ev)
	}
	return s
}

var (
	sealed1   = []byte("nonce-and-ciphertext-1")
	sealed2   = []byte("nonce-and-ciphertext-2")
	set1      = events.SecretSet{Ciphertext: sealed1, KeyID: "k1", Version: 1, SetBy: "tk0"}
	set2      = events.SecretSet{Ciphertext: sealed2, KeyID: "k1", Version: 2}
	secNone   = engine.Secret{}
	secOne    = secretOf(set1)
	secGone   = secretOf(set1, events.SecretDeleted{DeletedBy: "tk0"})
	secBackV2 = secretOf(set1, events.SecretDeleted{}, set2)
)

type otherSecretCommand struct{}

func (otherSecretCommand) SecretName() string { return "db" }

func TestDecideSecret(t *testing.T) {
	set := func(name string, sealed []byte, key string) engine.SetSecret {
		return engine.SetSecret{Name: name, Ciphertext: sealed, KeyID: key, By: "tk0"}
	}
	tests := []struct {
		name    string
		secret  engine.Secret
		cmd     engine.SecretCommand
		want    []events.Event
		wantErr error
	}{
		{name: "first set", secret: secNone, cmd: set("db", sealed1, "k1"), want: evs(set1)},
		{name: "set again: the next version", secret: secOne, cmd: engine.SetSecret{Name: "db", Ciphertext: sealed2, KeyID: "k1"}, want: evs(set2)},
		{name: "set after delete goes on counting", secret: secGone, cmd: engine.SetSecret{Name: "db", Ciphertext: sealed2, KeyID: "k1"}, want: evs(set2)},
		{name: "delete", secret: secOne, cmd: engine.DeleteSecret{Name: "db", By: "tk0"}, want: evs(events.SecretDeleted{DeletedBy: "tk0"})},
		{name: "delete one never set", secret: secNone, cmd: engine.DeleteSecret{Name: "db"}, wantErr: domain.ErrNotFound},
		{name: "delete one deleted", secret: secGone, cmd: engine.DeleteSecret{Name: "db"}, wantErr: domain.ErrNotFound},
		{name: "no ciphertext", secret: secNone, cmd: set("db", nil, "k1"), wantErr: domain.ErrInvalid},
		{name: "no key id", secret: secNone, cmd: set("db", sealed1, ""), wantErr: domain.ErrInvalid},
		{name: "ciphertext too large", secret: secNone, cmd: set("db", make([]byte, engine.MaxSecretValue+2048), "k1"), wantErr: domain.ErrInvalid},
		{name: "bad name", secret: secNone, cmd: set("a.b", sealed1, "k1"), wantErr: domain.ErrInvalid},
		{name: "empty name", secret: secNone, cmd: engine.DeleteSecret{}, wantErr: domain.ErrInvalid},
		{name: "unknown command", secret: secOne, cmd: otherSecretCommand{}, wantErr: domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.DecideSecret(tc.secret, tc.cmd)
			checkErr(t, err, tc.wantErr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSecret_Apply(t *testing.T) {
	if !secOne.Exists() || secOne.Name != "db" || secOne.Version != 1 || secOne.KeyID != "k1" ||
		string(secOne.Ciphertext) != string(sealed1) || !secOne.CreatedAt.Equal(t0) || secOne.UpdatedBy != "tk0" {
		t.Errorf("after a set: %+v", secOne)
	}
	if secGone.Exists() || !secGone.Deleted || secGone.Ciphertext != nil || secGone.Version != 1 || !secGone.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("after a delete: %+v", secGone)
	}
	if !secBackV2.Exists() || secBackV2.Version != 2 || !secBackV2.CreatedAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("set again after a delete: %+v", secBackV2)
	}
	if secNone.Exists() {
		t.Error("a secret never set exists")
	}
}

func TestSecretRefs(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    []string
		wantErr string
	}{
		{name: "none", env: map[string]string{"A": "plain", "B": "${steps.x.result}", "C": "$secret:x", "D": "${SECRET:x}"}},
		{name: "whole value", env: map[string]string{"TOKEN": "${secret:api_token}"}, want: []string{"api_token"}},
		{name: "embedded, twice, in two variables", env: map[string]string{
			"URL": "postgres://app:${secret:db}@db:5432/${secret:db-name}", "PW": "${secret:db}",
		}, want: []string{"db", "db-name"}},
		{name: "empty name", env: map[string]string{"K": "${secret:}"}, wantErr: "env K: ${secret:}"},
		{name: "name with a dot", env: map[string]string{"K": "x ${secret:a.b}", "J": "${secret:ok}"}, wantErr: "env K: ${secret:a.b}"},
		{name: "name too long", env: map[string]string{"K": engine.SecretRef(strings.Repeat("a", 65))}, wantErr: "a secret's name is 1 to 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.SecretRefs(tc.env)
			if tc.wantErr != "" {
				checkErr(t, err, domain.ErrInvalid)
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SecretRefs = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolveSecrets(t *testing.T) {
	env := map[string]string{"URL": "postgres://app:${secret:db}@db/${secret:name}", "PW": "${secret:db}", "PLAIN": "$1 ${x}"}
	got := engine.ResolveSecrets(env, map[string]string{"db": "p$1w${secret:name}", "name": "orders"})
	want := map[string]string{"URL": "postgres://app:p$1w${secret:name}@db/orders", "PW": "p$1w${secret:name}", "PLAIN": "$1 ${x}"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ResolveSecrets:\n got %q\nwant %q", got, want)
	}
	if env["PW"] != "${secret:db}" {
		t.Fatalf("the env given was changed: %q", env)
	}
}
