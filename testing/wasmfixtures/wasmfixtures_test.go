package wasmfixtures_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

var magic = []byte("\x00asm\x01\x00\x00\x00")

func TestFixtures_AreWasm(t *testing.T) {
	for name, b := range map[string][]byte{
		"add": wasmfixtures.Add(), "fallback": wasmfixtures.Fallback(),
		"loop": wasmfixtures.Loop(), "grow": wasmfixtures.GrowMemory(),
		"bigmem": wasmfixtures.BigMemory(), "f64": wasmfixtures.F64(),
		"i64": wasmfixtures.I64(), "uppercase": wasmfixtures.Uppercase(),
		"echo": wasmfixtures.Echo(), "fail": wasmfixtures.Fail(),
	} {
		if !bytes.HasPrefix(b, magic) {
			t.Errorf("%s: no wasm magic", name)
		}
	}
	if bytes.HasPrefix(wasmfixtures.Invalid(), magic[:4]) {
		t.Error("Invalid starts with the wasm magic")
	}
}

func TestFixtures_ReturnCopies(t *testing.T) {
	a := wasmfixtures.Add()
	a[0] = 'X'
	if wasmfixtures.Add()[0] != 0 {
		t.Fatal("Add returned shared bytes")
	}
}

// TestFixtures_UpToDate rebuilds every .wat with wat2wasm (when installed)
// and compares with the committed .wasm.
func TestFixtures_UpToDate(t *testing.T) {
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed")
	}
	wats, _ := filepath.Glob("*.wat")
	for _, wat := range wats {
		committed := strings.TrimSuffix(wat, ".wat") + ".wasm"
		out := filepath.Join(t.TempDir(), committed)
		if b, err := exec.Command(tool, wat, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s: %v\n%s", wat, err, b)
		}
		want, _ := os.ReadFile(out)
		got, err := os.ReadFile(committed)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make wasm", committed)
		}
	}
}
