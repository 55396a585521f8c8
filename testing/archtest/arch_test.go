package archtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/jetprop/jetprop"

var update = flag.Bool("update", false, "rewrite docs/ARCHITECTURE.md's layer table from Layers")

// pkg is what go list says of one package of the module.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

func packages(t *testing.T) []pkg {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(goList(t, "-json=ImportPath,Dir,GoFiles,Imports", "./...")))
	var out []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if len(out) < 20 {
		t.Fatalf("go list found only %d packages", len(out))
	}
	return out
}

// rel is the path below the module ("" for none of the module's).
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func matches(pattern, path string) bool {
	if sub, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == sub || strings.HasPrefix(path, sub+"/")
	}
	return path == pattern
}

// layerOf returns the layer a module package belongs to: the one whose
// Path matches it most specifically.
func layerOf(path string) (Layer, bool) {
	var best Layer
	found := false
	for _, l := range Layers {
		if matches(l.Path, path) && (!found || len(l.Path) > len(best.Path)) {
			best, found = l, true
		}
	}
	return best, found
}

func isStd(path string) bool { return !strings.Contains(strings.Split(path, "/")[0], ".") }

// allowed reports whether a package of layer l may import imp.
func allowed(l Layer, imp string) bool {
	if isStd(imp) {
		return true
	}
	r, internal := rel(imp)
	for _, m := range l.May {
		switch {
		case m == "*":
			return true
		case internal && matches(m, r):
			return true
		case !internal && Modules[m] != "" && (imp == Modules[m] || strings.HasPrefix(imp, Modules[m]+"/")):
			return true
		}
	}
	return false
}

// TestLayers: every package of the module belongs to a layer and imports
// only what its layer may.
func TestLayers(t *testing.T) {
	for _, p := range packages(t) {
		r, _ := rel(p.ImportPath)
		l, ok := layerOf(r)
		if !ok {
			t.Errorf("%s belongs to no layer: add it to Layers (testing/archtest/layers.go) and run go test ./testing/archtest -update", r)
			continue
		}
		for _, imp := range p.Imports {
			if !allowed(l, imp) {
				t.Errorf("%s imports %s: layer %s may import only %v", r, imp, l.Path, l.May)
			}
		}
	}
}

// TestLayers_RulesNameRealThings: every package and module a rule names
// exists, so a rename cannot leave a rule that allows nothing.
func TestLayers_RulesNameRealThings(t *testing.T) {
	var paths []string
	for _, p := range packages(t) {
		r, _ := rel(p.ImportPath)
		paths = append(paths, r)
	}
	exists := func(pattern string) bool {
		return slices.ContainsFunc(paths, func(p string) bool { return matches(pattern, p) })
	}
	for _, l := range Layers {
		if !exists(l.Path) {
			t.Errorf("layer %s: no such package", l.Path)
		}
		for _, m := range l.May {
			if m != "*" && Modules[m] == "" && !exists(m) {
				t.Errorf("layer %s may import %s: no such package or module", l.Path, m)
			}
		}
	}
}

// TestClosures: what some packages must never pull in, directly or not.
func TestClosures(t *testing.T) {
	for _, c := range Closures {
		args := []string{"-deps"}
		if c.Tests {
			args = append(args, "-test")
		}
		deps := strings.Fields(string(goList(t, append(args, "./"+c.Path)...)))
		for _, name := range c.Without {
			for _, d := range deps {
				if d == Modules[name] || strings.HasPrefix(d, Modules[name]+"/") {
					t.Errorf("%s depends on %s (%s), but %s", c.Path, d, name, c.Why)
					break
				}
			}
		}
	}
}

// TestPureCore: the core's code starts no goroutine, takes no context and
// reads no clock or randomness: everything comes in with the command.
func TestPureCore(t *testing.T) {
	forbidden := []string{"context", "math/rand", "math/rand/v2", "crypto/rand", "os", "net", "net/http", "sync", "sync/atomic"}
	for _, p := range packages(t) {
		if r, _ := rel(p.ImportPath); r != "engine" {
			continue
		}
		for _, imp := range p.Imports {
			if slices.Contains(forbidden, imp) {
				t.Errorf("engine imports %s", imp)
			}
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: engine starts a goroutine", fset.Position(n.Pos()))
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && (n.Sel.Name == "Now" || n.Sel.Name == "Since" || n.Sel.Name == "After" || n.Sel.Name == "Sleep") {
						t.Errorf("%s: engine reads the clock (time.%s)", fset.Position(n.Pos()), n.Sel.Name)
					}
				}
				return true
			})
		}
	}
}

const (
	tableStart = "<!-- layer table: generated from testing/archtest/layers.go by `go test ./testing/archtest -update`; do not edit by hand -->"
	tableEnd   = "<!-- end of layer table -->"
)

// Table renders Layers and Closures as the doc's markdown.
func Table() string {
	var b strings.Builder
	b.WriteString("| package | what lives there | may import (besides the standard library) |\n|---|---|---|\n")
	for _, l := range Layers {
		may := "nothing"
		if len(l.May) > 0 {
			parts := make([]string, len(l.May))
			for i, m := range l.May {
				switch {
				case m == "*":
					parts[i] = "anything"
				case Modules[m] != "":
					parts[i] = m
				default:
					parts[i] = "`" + m + "`"
				}
			}
			may = strings.Join(parts, ", ")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", l.Path, l.What, may)
	}
	b.WriteString("\nNever in the dependency closure (`go list -deps`):\n\n")
	for _, c := range Closures {
		what := "`" + c.Path + "`"
		if c.Tests {
			what += " with its tests"
		}
		fmt.Fprintf(&b, "- %s: no %s — %s.\n", what, strings.Join(c.Without, ", no "), c.Why)
	}
	return b.String()
}

// TestDocTable: docs/ARCHITECTURE.md shows exactly Table().
func TestDocTable(t *testing.T) {
	path := filepath.Join(root(t), "docs", "ARCHITECTURE.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), tableStart)
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s has no generated layer table (markers %q … %q)", path, tableStart, tableEnd)
	}
	want := before + tableStart + "\n" + Table() + tableEnd + after
	if want == string(doc) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/ARCHITECTURE.md's layer table differs from testing/archtest/layers.go: run go test ./testing/archtest -update")
}
