package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func TestCLI_ArtifactRoundTrip(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	file := writeModule(t)

	digest := strings.TrimSpace(jetprop(ctx, vars, "", "artifact", "push", file, "--name", "vision:1.2").ok(t))
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
		t.Fatalf("push printed %q", digest)
	}
	if again := strings.TrimSpace(jetprop(ctx, vars, "", "artifact", "push", file).ok(t)); again != digest { // name "add" from the file
		t.Fatalf("second push printed %q", again)
	}

	table := jetprop(ctx, vars, "", "artifact", "ls").ok(t)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME TAG DIGEST SIZE CREATED" {
		t.Fatalf("table:\n%s", table)
	}
	short := digest[:len("sha256:")+12]
	for i, want := range []string{"add latest " + short + " 41 B", "vision 1.2 " + short + " 41 B"} {
		if got := strings.Join(strings.Fields(lines[i+1])[:5], " "); got != want {
			t.Errorf("row %d %q, want %q", i+1, got, want)
		}
	}
	var page httpapi.ArtifactList
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "artifact", "list", "-o", "json").ok(t)), &page); err != nil || page.Total != 2 {
		t.Fatalf("ls -o json: %+v %v", page, err)
	}
	var got httpapi.Artifact
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "artifact", "get", "vision:1.2").ok(t)), &got); err != nil || got.Digest != digest || len(got.History) != 1 {
		t.Fatalf("get: %+v %v", got, err)
	}

	out := filepath.Join(t.TempDir(), "pulled.wasm")
	if printed := strings.TrimSpace(jetprop(ctx, vars, "", "artifact", "pull", "vision:1.2", "-o", out).ok(t)); printed != digest {
		t.Fatalf("pull printed %q", printed)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, wasmfixtures.Add()) {
		t.Fatalf("pulled %d bytes, %v", len(b), err)
	}
	if stdout := jetprop(ctx, vars, "", "artifact", "pull", digest).ok(t); stdout != string(wasmfixtures.Add()) {
		t.Fatalf("pull to stdout: %q", stdout)
	}

	id := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--image", "vision:1.2", "--inputs", "1,2").ok(t))
	if task, ok := s.Tasks.Get(id); !ok || task.Module != digest || task.ImageURL != "vision:1.2" {
		t.Fatalf("task %+v", task)
	}
	if out := jetprop(ctx, vars, "", "artifact", "rm", "add").ok(t); out != "add deleted\n" {
		t.Fatalf("rm printed %q", out)
	}
	jetprop(ctx, vars, "", "artifact", "rm", "vision:1.2").fails(t, exitError, "is used by task "+id)
	jetprop(ctx, vars, "", "task", "delete", id).ok(t)
	jetprop(ctx, vars, "", "artifact", "rm", "vision", "--all").ok(t)
	if out := jetprop(ctx, vars, "", "artifact", "ls").ok(t); strings.Count(out, "\n") != 1 {
		t.Fatalf("ls after rm:\n%s", out)
	}
	jetprop(ctx, vars, "", "artifact", "get", "vision:1.2").fails(t, exitError, "not found (HTTP 404)")
	jetprop(ctx, vars, "", "artifact", "pull", digest, "-o", out, "--force").fails(t, exitError, "HTTP 404")
}

func TestCLI_ArtifactPush(t *testing.T) {
	s := apitest.Start(t, apitest.Config{ModuleMax: 1024})
	ctx, vars := t.Context(), serverEnv(s)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := write("big.wasm", append(wasmfixtures.Add(), make([]byte, 2000)...))

	t.Run("progress", func(t *testing.T) {
		r := jetprop(ctx, vars, "", "artifact", "push", writeModule(t), "--name", "add:p", "--progress")
		r.ok(t)
		if !strings.Contains(r.stderr, "\radd:p [##############################] 100%") || !strings.HasSuffix(r.stderr, "\n") {
			t.Fatalf("progress %q", r.stderr)
		}
	})
	t.Run("no progress when stderr is no terminal", func(t *testing.T) {
		r := jetprop(ctx, vars, "", "artifact", "push", writeModule(t), "--name", "add:q")
		if r.ok(t); r.stderr != "" {
			t.Fatalf("stderr %q", r.stderr)
		}
	})
	t.Run("name from the environment", func(t *testing.T) {
		env := map[string]string{"JETPROP_SERVER": s.URL, "JETPROP_ARTIFACT_PUSH_NAME": "fromenv:7"}
		jetprop(ctx, env, "", "artifact", "push", writeModule(t)).ok(t)
		if _, ok := s.Artifacts.Resolve("fromenv", "7"); !ok {
			t.Fatal("fromenv:7 not pushed")
		}
	})
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not wasm", []string{write("text.wasm", []byte("hello")), "--name", "x"}, exitError, "not a wasm module"},
		{"too large", []string{big, "--name", "x"}, exitError, "(HTTP 413)"},
		{"bad name from the file", []string{write("my.module.wasm", wasmfixtures.Add())}, exitError, "artifact name"},
		{"bad tag", []string{writeModule(t), "--name", "x:-1"}, exitError, "(HTTP 400)"},
		{"missing file", []string{filepath.Join(dir, "nope.wasm")}, exitError, "no such file"},
		{"no file", nil, exitUsage, "missing arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jetprop(ctx, vars, "", append([]string{"artifact", "push"}, tc.args...)...).fails(t, tc.code, tc.want)
		})
	}
	if page, _ := s.Service.ListArtifacts(0, 10); len(page) != 3 {
		t.Fatalf("catalog after refused pushes: %+v", page)
	}
}

func TestCLI_ArtifactPull_Terminal(t *testing.T) {
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no terminal:", err)
	}
	defer tty.Close()
	e := &env{stdin: strings.NewReader(""), stdout: tty, stderr: &syncBuffer{}, lookup: func(string) (string, bool) { return "", false }}
	if code := root().execute(t.Context(), e, "", []string{"artifact", "pull", "x:1"}); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	b := newProgressBar(&buf, "vision:1.2", 4<<20)
	b.update(1 << 20)
	b.update(2 << 20) // within progressEvery of the last draw: not drawn
	b.finish()
	lines := strings.Split(buf.String(), "\r")
	if len(lines) != 3 || !strings.Contains(lines[1], "[#######.......................]  25%  1.0 MiB / 4.0 MiB") ||
		!strings.Contains(lines[2], "[###############...............]  50%  2.0 MiB / 4.0 MiB") || !strings.HasSuffix(buf.String(), "\n") {
		t.Fatalf("drawn %q", buf.String())
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 41 << 10: "41.0 KiB", 10 << 20: "10.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
