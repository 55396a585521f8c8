package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// truthCase is one command line and what it must do: the exit code and a
// substring of stdout (exit 0) or stderr (otherwise). Rows are
// self-contained: vars and files are set up by the row's own fields.
type truthCase struct {
	name     string
	vars     map[string]string // added to the stack's JETPROP_SERVER
	args     []string
	wantCode int
	want     string
}

// TestCLI_Truth runs the CLI against a real API: the refusals at the door
// (criterion 3) and what the docs promise (criterion 9).
func TestCLI_Truth(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx := t.Context()
	if _, err := s.Service.PushArtifact(ctx, "add", "1", bytes.NewReader(wasmfixtures.Add())); err != nil {
		t.Fatal(err)
	}
	tests := []truthCase{
		{name: "--version", args: []string{"--version"}, wantCode: exitOK, want: "jetprop " + version() + " go"},
		{name: "version", args: []string{"version"}, wantCode: exitOK, want: "jetprop " + version() + " go"},
		{name: "README: task create on a pushed artifact", args: []string{"task", "create", "--name", "add", "--image", "add:1", "--inputs", "1,2"}, wantCode: exitOK, want: "key-"},
		{name: "function not exported", args: []string{"task", "create", "--name", "infer", "--image", "add:1"}, wantCode: exitError,
			want: `function "infer" is not exported by module add:1 (sha256:`},
		{name: "image not in the catalog", args: []string{"task", "create", "--name", "add", "--image", "nosuch:9"}, wantCode: exitError,
			want: "image nosuch:9 is not in the catalog; push it with `jetprop artifact push` or give a full OCI reference registry/repo:tag (HTTP 400)"},
		{name: "env key with NUL", args: []string{"task", "create", "--name", "add", "--image", "add:1", "--env", "N\x00=1"}, wantCode: exitError, want: "holds a NUL byte (HTTP 400)"},
		{name: "server unreachable", vars: map[string]string{"JETPROP_SERVER": "http://127.0.0.1:1", "JETPROP_RETRY_FOR": "0"}, args: []string{"task", "list"}, wantCode: exitError,
			want: "cannot reach the jetprop server at http://127.0.0.1:1 (dial tcp 127.0.0.1:1: connect: connection refused); start one with 'jetprop up', or give its address with --server or JETPROP_SERVER"},
		{name: "server credentials without hosts", vars: map[string]string{"JETPROP_OCI_TOKEN": "X"}, args: []string{"up", "--data", t.TempDir()}, wantCode: exitError,
			want: "--oci-username, --oci-password and --oci-token need --oci-registry-hosts"},
		{name: "registry hosts without credentials", args: []string{"server", "--oci-registry-hosts", "ghcr.io"}, wantCode: exitError,
			want: "--oci-registry-hosts without --oci-token or --oci-username"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vars := serverEnv(s)
			for k, v := range tc.vars {
				vars[k] = v
			}
			r := jetprop(ctx, vars, "", tc.args...)
			got := r.stderr
			if tc.wantCode == exitOK {
				got = r.stdout
			}
			if r.code != tc.wantCode || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d with %q", r.code, r.stdout, r.stderr, tc.wantCode, tc.want)
			}
		})
	}
}

// TestCLI_ListColumnsCapped: a task name as long as the engine takes
// (engine.MaxNameLen bytes; the 10 KB one is refused at create
// now) is cut in table output and whole in -o json.
func TestCLI_ListColumnsCapped(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	vars := serverEnv(s)
	long := strings.Repeat("é", engine.MaxNameLen/len("é"))
	jetprop(t.Context(), vars, "", "task", "create", "--name", long, "--image", "ghcr.io/jetprop/add:1").ok(t)
	table := jetprop(t.Context(), vars, "", "task", "list").ok(t)
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		if n := utf8.RuneCountInString(line); n > 200 {
			t.Fatalf("a line of %d characters: %.120q", n, line)
		}
	}
	if !strings.Contains(table, strings.Repeat("é", maxCell-1)+"…") {
		t.Fatalf("no capped name in %q", table)
	}
	if js := jetprop(t.Context(), vars, "", "task", "list", "-o", "json").ok(t); !strings.Contains(js, long) {
		t.Fatal("-o json does not hold the whole name")
	}
}

// TestCLI_PullKeepsFiles: artifact pull -o refuses an existing file unless
// --force, and leaves it as it was.
func TestCLI_PullKeepsFiles(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	vars := serverEnv(s)
	if _, err := s.Service.PushArtifact(t.Context(), "add", "1", bytes.NewReader(wasmfixtures.Add())); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "add.wasm")
	if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	jetprop(t.Context(), vars, "", "artifact", "pull", "add:1", "-o", path).fails(t, exitError, path+" exists; give --force to overwrite it")
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Fatalf("the file was changed: %q", b)
	}
	jetprop(t.Context(), vars, "", "artifact", "pull", "add:1", "-o", path, "--force").ok(t)
	if b, _ := os.ReadFile(path); !bytes.Equal(b, wasmfixtures.Add()) {
		t.Fatal("--force did not write the module")
	}
	fresh := filepath.Join(t.TempDir(), "new.wasm")
	jetprop(t.Context(), vars, "", "artifact", "pull", "add:1", "-o", fresh).ok(t)
	if b, _ := os.ReadFile(fresh); !bytes.Equal(b, wasmfixtures.Add()) {
		t.Fatal("a new file was not written")
	}
}
