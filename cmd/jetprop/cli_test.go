package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// result is what one jetprop command line did.
type result struct {
	stdout, stderr string
	code           int
}

// jetprop runs the command line args with the environment vars and stdin.
func jetprop(ctx context.Context, vars map[string]string, stdin string, args ...string) result {
	var out, errOut syncBuffer
	code := jetpropTo(ctx, &out, &errOut, vars, stdin, args...)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func jetpropTo(ctx context.Context, out, errOut *syncBuffer, vars map[string]string, stdin string, args ...string) int {
	e := &env{
		stdin: strings.NewReader(stdin), stdout: out, stderr: errOut,
		lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
	}
	return root().execute(ctx, e, "", args)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ok fails unless the command succeeded, and returns its stdout.
func (r result) ok(t *testing.T) string {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// fails fails unless the command exited with code and its stderr holds want.
func (r result) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, code, want)
	}
}

// serverEnv points the client commands at the stack.
func serverEnv(s *apitest.Stack) map[string]string {
	return map[string]string{"JETPROP_SERVER": s.URL}
}

// writeModule writes the add module to a temp file.
func writeModule(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "add.wasm")
	if err := os.WriteFile(path, wasmfixtures.Add(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLI_Help(t *testing.T) {
	var walk func(c *command, path string)
	walk = func(c *command, path string) {
		t.Run(orDash(path), func(t *testing.T) {
			args := append(strings.Fields(path), "--help")
			if c.raw != nil {
				return // up, server and proplet: TestCLI_ServeUsage
			}
			out := jetprop(t.Context(), nil, "", args...).ok(t)
			if !strings.Contains(out, "Usage: "+join("jetprop", path)) {
				t.Fatalf("no usage line in %q", out)
			}
			for _, s := range c.sub {
				if !strings.Contains(out, "  "+s.name+" ") {
					t.Errorf("%q not listed in %q", s.name, out)
				}
			}
			if c.setup != nil {
				wantFlagHelp(t, c, path, out)
			}
		})
		for _, s := range c.sub {
			walk(s, join(path, s.name))
		}
	}
	walk(root(), "")
}

// wantFlagHelp checks that help names every flag of c and its env var.
func wantFlagHelp(t *testing.T, c *command, path, help string) {
	t.Helper()
	fs := newFlagSet(path, func(string) (string, bool) { return "", false })
	c.setup(fs, &env{})
	if !strings.Contains(help, strings.TrimSpace(c.help)[:20]) {
		t.Errorf("help does not say what the command does: %q", help)
	}
	fs.fs.VisitAll(func(f *flag.Flag) {
		env := strings.Join(fs.Env(f.Name), " or ")
		if f.Usage == "" { // an alias, listed with its flag
			return
		}
		if env == "" || !strings.Contains(help, "--"+f.Name+" ") && !strings.Contains(help, "--"+f.Name+"\t") ||
			!strings.Contains(help, "env "+env) {
			t.Errorf("flag %s (env %q) not in help %q", f.Name, env, help)
		}
	})
}

func TestCLI_HelpCommand(t *testing.T) {
	direct := jetprop(t.Context(), nil, "", "task", "results", "--help").ok(t)
	viaHelp := jetprop(t.Context(), nil, "", "help", "task", "results").ok(t)
	if direct != viaHelp || !strings.Contains(direct, "--wait duration") || !strings.Contains(direct, "JETPROP_TASK_RESULTS_WAIT") {
		t.Fatalf("help differs or lacks --wait:\n%s\n---\n%s", direct, viaHelp)
	}
}

func TestCLI_UsageErrors(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no command", nil, nil, "Usage: jetprop <command>"},
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"group without command", nil, []string{"task"}, "Usage: jetprop task <command>"},
		{"unknown subcommand", nil, []string{"task", "explode"}, `unknown command "task explode"`},
		{"missing id", nil, []string{"task", "get"}, "missing arguments: want <id>"},
		{"extra argument", nil, []string{"task", "get", "a", "b"}, `unexpected arguments ["b"]`},
		{"unknown flag", nil, []string{"task", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{"bad flag value", nil, []string{"task", "list", "--limit", "many"}, `invalid value "many"`},
		{"bad output format", nil, []string{"task", "list", "-o", "yaml"}, "want one of table, json"},
		{"bad env value", map[string]string{"JETPROP_TASK_LIST_LIMIT": "many"}, []string{"task", "list"}, "env JETPROP_TASK_LIST_LIMIT"},
		{"bad shared env value", map[string]string{"JETPROP_OUTPUT": "xml"}, []string{"proplets", "list"}, "env JETPROP_OUTPUT"},
		{"run without function", nil, []string{"run", "add.wasm"}, "missing arguments"},
		{"bad env pair", nil, []string{"run", "--env", "novalue", "add.wasm", "add"}, "want KEY=VALUE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := jetprop(t.Context(), tc.vars, "", tc.args...)
			r.fails(t, exitUsage, tc.want)
			if r.stdout != "" {
				t.Fatalf("stdout %q", r.stdout)
			}
		})
	}
}

func TestCLI_Version(t *testing.T) {
	if out := jetprop(t.Context(), nil, "", "version").ok(t); !strings.HasPrefix(out, "jetprop ") {
		t.Fatalf("version %q", out)
	}
}

func TestCLI_ServerUnreachable(t *testing.T) {
	r := jetprop(t.Context(), nil, "", "task", "list", "--server", "http://127.0.0.1:1")
	r.fails(t, exitError, "jetprop: ")
}

func TestFlagSet_Split(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantFlags []string
		wantPos   []string
	}{
		{"flags after arguments", []string{"id", "--wait", "5s"}, []string{"--wait", "5s"}, []string{"id"}},
		{"flag with =", []string{"--wait=5s", "id"}, []string{"--wait=5s"}, []string{"id"}},
		{"bool flag takes no value", []string{"--daemon", "id"}, []string{"--daemon"}, []string{"id"}},
		{"negative numbers are arguments", []string{"m.wasm", "add", "-5", "-1.5"}, nil, []string{"m.wasm", "add", "-5", "-1.5"}},
		{"double dash ends flags", []string{"a", "--", "--wait", "-x"}, nil, []string{"a", "--wait", "-x"}},
		{"dash is an argument", []string{"-"}, nil, []string{"-"}},
		{"unknown flag left to Parse", []string{"--nope", "a"}, []string{"--nope"}, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("test", func(string) (string, bool) { return "", false })
			var wait string
			var daemon bool
			fs.String(&wait, "wait", "", "")
			fs.Bool(&daemon, "daemon", false, "")
			flags, pos := fs.split(tc.args)
			if !slices.Equal(flags, tc.wantFlags) || !slices.Equal(pos, tc.wantPos) {
				t.Fatalf("flags %q pos %q, want %q %q", flags, pos, tc.wantFlags, tc.wantPos)
			}
		})
	}
}

func TestFlagSet_EnvDefaults(t *testing.T) {
	vars := map[string]string{
		"JETPROP_SERVER": "http://example:1", "JETPROP_X_Y_TIMEOUT": "3s",
		"JETPROP_X_Y_ENV": "A=1,B=2", "JETPROP_X_Y_DRY_RUN": "true",
	}
	fs := newFlagSet("x y", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	var server string
	var p taskSpec
	var dry bool
	fs.String(&server, "server", "default", "")
	p.declare(fs)
	fs.Bool(&dry, "dry-run", false, "")
	if _, err := fs.parse([]string{"--env", "C=3"}); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(server, " ", p.timeout, " ", p.env, " ", dry)
	if want := "http://example:1 3s map[A:1 B:2 C:3] true"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
