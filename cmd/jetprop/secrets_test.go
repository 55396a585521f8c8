package main

import (
	"errors"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
)

func TestCLI_Secret(t *testing.T) {
	const value = "cli-S3cret-v4lue"
	s := apitest.Start(t, apitest.Config{Auth: true})
	ctx := t.Context()
	admin := withToken(s, s.Token(t, domain.RoleAdmin))

	if out := jetprop(ctx, admin, value+"\n", "secret", "set", "db").ok(t); out != "secret db set: version 1\n" {
		t.Fatalf("secret set printed %q", out)
	}
	got, err := s.Service.ResolveSecrets(ctx, []string{"db"})
	if err != nil || got["db"] != value {
		t.Fatalf("the value set is %q (one trailing newline dropped), %v", got["db"], err)
	}
	jetprop(ctx, admin, "line one\nline two\r\n", "secret", "set", "db").ok(t)
	if got, _ := s.Service.ResolveSecrets(ctx, []string{"db"}); got["db"] != "line one\nline two" {
		t.Fatalf("a value of two lines became %q", got["db"])
	}

	out := jetprop(ctx, admin, "", "secret", "ls").ok(t)
	if !regexp.MustCompile(`(?m)^db +2 +\S+ +\S+ +` + s.Sealer.KeyID() + `$`).MatchString(out) {
		t.Fatalf("secret ls:\n%s", out)
	}
	operator := withToken(s, s.Token(t, domain.RoleOperator))
	jetprop(ctx, operator, "x", "secret", "set", "db").fails(t, exitError, "HTTP 403")
	id := strings.TrimSpace(jetprop(ctx, operator, "", "task", "create", "--name", "add", "--file", writeModule(t), "--env", "K=${secret:db}").ok(t))
	if task := jetprop(ctx, operator, "", "task", "get", id).ok(t); !strings.Contains(task, `"K": "${secret:db}"`) {
		t.Fatalf("task get:\n%s", task)
	}
	jetprop(ctx, operator, "", "task", "create", "--name", "_start", "--file", writeModule(t), "--env", "K=${secret:nope}").
		fails(t, exitError, `unknown secret "nope"`)
	for _, args := range [][]string{{"events", "tail", "--no-follow"}, {"secret", "ls", "-o", "json"}, {"task", "list"}} {
		if out := jetprop(ctx, admin, "", args...).ok(t); strings.Contains(out, value) || strings.Contains(out, "line two") {
			t.Fatalf("%s shows a value:\n%s", strings.Join(args, " "), out)
		}
	}

	jetprop(ctx, admin, "", "secret", "set", "db").fails(t, exitUsage, "no value on stdin")
	jetprop(ctx, admin, "v", "secret", "set", "a.b").fails(t, exitError, "secret name")
	if out := jetprop(ctx, admin, "", "secret", "rm", "db").ok(t); out != "secret db deleted\n" {
		t.Fatalf("secret rm printed %q", out)
	}
	jetprop(ctx, admin, "", "secret", "rm", "db").fails(t, exitError, "HTTP 404")
}

func TestServerConfig_SecretsKey(t *testing.T) {
	const key = "pQ0W1xW2cT7sV1m3l4t0b6Yq0Zr9aE8nHk2uJ5fLd4c=" // 32 bytes in base64
	tests := []struct {
		name         string
		cmd          string
		args         []string
		vars         map[string]string
		wantKey      string
		wantFile     string
		wantGenerate bool
		wantErr      string
	}{
		{name: "up in dev mode makes a key file", cmd: "up", wantGenerate: true},
		{name: "up with auth does not", cmd: "up", args: []string{"--auth", "on"}},
		{name: "server does not", cmd: "server"},
		{name: "the key in the environment", cmd: "server", vars: map[string]string{"JETPROP_SECRETS_KEY": " " + key + "\n"}, wantKey: key},
		{name: "a key file by flag", cmd: "server", args: []string{"--secrets-key-file", "/etc/jetprop/key"}, wantFile: "/etc/jetprop/key"},
		{name: "a key file by variable", cmd: "up", vars: map[string]string{"JETPROP_SECRETS_KEY_FILE": "/k"}, wantFile: "/k", wantGenerate: true},
		{name: "both", cmd: "server", args: []string{"--secrets-key-file", "/k"}, vars: map[string]string{"JETPROP_SECRETS_KEY": key},
			wantErr: "exclude each other"},
		{name: "a bad key is not quoted", cmd: "server", vars: map[string]string{"JETPROP_SECRETS_KEY": "hunter2-is-not-a-key"},
			wantErr: "JETPROP_SECRETS_KEY: want 32 random bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{lookup: func(k string) (string, bool) { v, ok := tc.vars[k]; return v, ok }}
			cfg, err := serverConfig(e, tc.cmd, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err %v, want %q without the key", err, tc.wantErr)
				}
				return
			}
			if err != nil || cfg.SecretsKey != tc.wantKey || cfg.SecretsKeyFile != tc.wantFile || cfg.GenerateSecretsKey != tc.wantGenerate {
				t.Fatalf("key %q file %q generate %v, err %v", cfg.SecretsKey, cfg.SecretsKeyFile, cfg.GenerateSecretsKey, err)
			}
		})
	}
}

// TestCLI_UpSecrets runs `jetprop up` in dev mode: the first secret set
// makes the key file (0600) in the data directory, and `jetprop run` with
// an env that refers to the secret gives the module its value.
func TestCLI_UpSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole server")
	}
	dir := t.TempDir()
	vars := startUpIn(t, dir)
	ctx := t.Context()
	keyFile := app.SecretsKeyPath(dir)
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a key file before any secret: %v", err)
	}
	jetprop(ctx, vars, "tok-42\n", "secret", "set", "api").ok(t)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	out := jetprop(ctx, vars, "", "run", "../../testing/wasmfixtures/revenv.wasm", "_start", "--env", "K=v ${secret:api}").ok(t)
	if out != "24-kot v=K\n" {
		t.Fatalf("run printed %q", out)
	}
}
