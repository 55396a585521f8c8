package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binaries are bin/jetprop and bin/proplet, built once for the whole
// package into a temp dir that TestMain removes.
var binaries struct {
	dir     string
	once    sync.Once
	jetprop string
	proplet string
	took    time.Duration
	err     error
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "jetprop-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binaries.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipShort skips process-level tests in -short runs.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test: skipped with -short")
	}
}

// build builds bin/jetprop and bin/proplet the first time a test needs them
// (so a -short or filtered run builds nothing) and returns their paths.
func build(t *testing.T) (jetprop, proplet string) {
	t.Helper()
	binaries.once.Do(func() {
		start := time.Now()
		binaries.err = goBuild(binaries.dir)
		binaries.took = time.Since(start)
		binaries.jetprop = filepath.Join(binaries.dir, "jetprop")
		binaries.proplet = filepath.Join(binaries.dir, "proplet")
		t.Logf("built bin/jetprop and bin/proplet in %s", binaries.took.Round(time.Millisecond))
	})
	if binaries.err != nil {
		t.Fatalf("build: %v", binaries.err)
	}
	return binaries.jetprop, binaries.proplet
}

// goBuild runs `go build -o dir ./cmd/jetprop ./cmd/proplet` in the module root.
func goBuild(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/jetprop", "./cmd/proplet")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out.Bytes())
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}
