package domain_test

import (
	"context"
	_ "embed"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

//go:embed testdata/sections.wasm
var sectionsWasm []byte

func TestCheckModule_Accepts(t *testing.T) {
	mods := fixtures()
	mods["sections"] = sectionsWasm
	mods["empty"] = domain.WasmHeader
	for name, b := range mods {
		t.Run(name, func(t *testing.T) {
			if err := domain.CheckModule(b); err != nil {
				t.Fatalf("CheckModule: %v", err)
			}
		})
	}
	// sections.wasm is a module wazero takes, so the walk above read
	// every form as wazero does.
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, sectionsWasm); err != nil {
		t.Fatalf("wazero refuses testdata/sections.wasm: %v", err)
	}
}

// The helpers below assemble modules: uleb encodes a u32, sec a section,
// mod a module.
func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func sec(id byte, content ...[]byte) []byte {
	c := cat(content...)
	return cat([]byte{id}, uleb(uint64(len(c))), c)
}

func mod(sections ...[]byte) []byte { return cat(domain.WasmHeader, cat(sections...)) }

var (
	funcType  = sec(1, uleb(1), []byte{0x60, 0, 0})                            // one type: () -> ()
	oneFunc   = sec(3, uleb(1), uleb(0))                                       // one function of type 0
	bigCount  = uleb(1<<32 - 1)                                                // the largest u32
	oneByte   = []byte{0}                                                      // a byte to count against
	body      = func(b ...byte) []byte { return cat(uleb(uint64(len(b))), b) } // a sized function body
	nameSec   = func(sub ...byte) []byte { return sec(0, uleb(4), []byte("name"), sub) }
	i32Offset = []byte{0x41, 0, 0x0b} // i32.const 0, end
)

func TestCheckModule_Refuses(t *testing.T) {
	tests := []struct {
		name   string
		module []byte
		want   string // in the error
	}{
		{"export count past the section (the 23-byte bomb)", wasmfixtures.ExportBomb(), "section export ends inside its exports count"},
		{"export count", mod(sec(7, []byte{0xff, 0xff, 0xff, 0xff, 0})), "section export declares 268435455 exports in 0 bytes"},
		{"section size past the module", mod([]byte{1}, uleb(1000), oneByte), "section type declares 1000 bytes, 1 are left in the module"},
		{"section size not a u32", mod([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x7f}), "section type size"},
		{"bytes after a section's content", mod(sec(1, uleb(0), oneByte)), "section type has 1 bytes after its content"},
		{"unknown section", mod(sec(14)), "section 14 is not a section"},
		{"type count", mod(sec(1, bigCount, oneByte)), "section type declares 4294967295 types in 1 bytes"},
		{"rec group count", mod(sec(1, uleb(1), []byte{0x4e}, bigCount)), "types in a rec group in 0 bytes"},
		{"not a function type", mod(sec(1, uleb(1), []byte{0x5f, 0, 0})), "not a function type"},
		{"parameter count", mod(sec(1, uleb(1), []byte{0x60}, bigCount, oneByte)), "declares 4294967295 parameters in 1 bytes"},
		{"parameters over the bound", mod(sec(1, uleb(1), []byte{0x60}, uleb(1001), make([]byte, 1002))), "1001 parameters, the bound is 1000"},
		{"result count", mod(sec(1, uleb(1), []byte{0x60, 0}, bigCount)), "declares 4294967295 results in 0 bytes"},
		{"import count", mod(sec(2, bigCount, oneByte)), "section import declares 4294967295 imports in 1 bytes"},
		{"import name length", mod(sec(2, uleb(1), uleb(0), bigCount, oneByte)), "import name of 4294967295 bytes in 1 bytes"},
		{"import kind", mod(sec(2, uleb(1), uleb(0), uleb(0), []byte{9})), "import of kind 0x9"},
		{"imported table size", mod(sec(2, uleb(1), uleb(0), uleb(0), []byte{1, 0x70, 0}, uleb(1<<27))), "table of 134217728 elements, the bound is 10000000"},
		{"types over the bound", repeated(1, domain.MaxTypes+1, 0x60, 0, 0), "section type declares more than 65536 function types"},
		{"functions over the bound", mod(funcType, sec(3, uleb(domain.MaxFunctions+1), make([]byte, domain.MaxFunctions+1))), "section function declares more than 1000000 functions"},
		{"function count", mod(funcType, sec(3, bigCount, oneByte)), "section function declares 4294967295 functions in 1 bytes"},
		{"table count", mod(sec(4, bigCount)), "section table declares 4294967295 tables in 0 bytes"},
		{"table size", mod(sec(4, uleb(1), []byte{0x70, 0}, uleb(MaxTable+1))), "table of 10000001 elements"},
		{"limits flags", mod(sec(5, uleb(1), []byte{4, 0})), "limits with flags 0x4"},
		{"memory count", mod(sec(5, bigCount)), "section memory declares 4294967295 memories in 0 bytes"},
		{"global count", mod(sec(6, bigCount, oneByte)), "section global declares 4294967295 globals"},
		{"constant opcode", mod(sec(6, uleb(1), []byte{0x7f, 0, 0x20, 0, 0x0b})), "opcode 0x20 in a constant expression"},
		{"constant runs past the section", mod(sec(6, uleb(1), []byte{0x7f, 0, 0x41})), "i32.const"},
		{"export name length", mod(sec(7, uleb(1), bigCount)), "export name of 4294967295 bytes in 0 bytes"},
		{"element count", mod(sec(9, bigCount)), "section element declares 4294967295 element segments in 0 bytes"},
		{"element function indexes", mod(sec(9, uleb(1), uleb(0), i32Offset, bigCount)), "4294967295 function indexes in 0 bytes"},
		{"element expressions", mod(sec(9, uleb(1), uleb(5), []byte{0x70}, bigCount)), "4294967295 element expressions in 0 bytes"},
		{"element form", mod(sec(9, uleb(1), uleb(8))), "element segment of form 8"},
		{"code count", mod(funcType, oneFunc, sec(10, bigCount, oneByte)), "section code declares 4294967295 function bodies in 1 bytes"},
		{"code body size", mod(funcType, oneFunc, sec(10, uleb(1), bigCount, oneByte)), "function body of 4294967295 bytes in 1 bytes"},
		{"local declaration count", mod(funcType, oneFunc, sec(10, uleb(1), body(0xff, 0xff, 0xff, 0xff, 0x0f, 0x0b))), "4294967295 local declarations in 1 bytes"},
		{"locals of one declaration (4 GiB in wazero)", wasmfixtures.LocalsBomb(), "declares 4294967295 locals in function body 0, the bound is 50000"},
		{"locals over the bound", mod(funcType, oneFunc, sec(10, uleb(1), body(2, 0xd0, 0x86, 0x03, 0x7f, 1, 0x7f, 0x0b))), "declares 50001 locals in function body 0"},
		{"locals of the module", manyLocals(3), "the bound is 131072 plus one per 8 bytes of code"},
		{"data count", mod(sec(11, bigCount)), "section data declares 4294967295 data segments in 0 bytes"},
		{"data bytes", mod(sec(11, uleb(1), uleb(1), bigCount, oneByte)), "data segment of 4294967295 bytes in 1 bytes"},
		{"data form", mod(sec(11, uleb(1), uleb(3))), "data segment of form 3"},
		{"custom name length", mod(sec(0, bigCount)), "custom section name of 4294967295 bytes in 0 bytes"},
		{"name: function names", mod(nameSec(1, 5, 0xff, 0xff, 0xff, 0xff, 0x0f)), `section custom "name" declares 4294967295 function names in 0 bytes`},
		{"name: local names", mod(nameSec(2, 8, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0)), "4294967295 local names in 1 bytes"},
		{"name: functions' local names", mod(nameSec(2, 5, 0xff, 0xff, 0xff, 0xff, 0x0f)), "4294967295 functions' local names in 0 bytes"},
		{"name: module name", mod(nameSec(0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f)), "module name of 4294967295 bytes in 0 bytes"},
		{"name: bytes after a subsection", mod(nameSec(0, 2, 0, 0)), "has 1 bytes after subsection 0"},
		{"name: subsection size", mod(nameSec(7, 9)), "subsection of 9 bytes in 0 bytes"},
		{"tag count", mod(sec(13, bigCount)), "section tag declares 4294967295 tags in 0 bytes"},
		{"no header", []byte("\x00asm\x02\x00\x00\x00"), "missing the \\0asm header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.CheckModule(tt.module)
			if err == nil {
				t.Fatal("CheckModule took it")
			}
			if !errors.Is(err, domain.ErrNotWasm) {
				t.Errorf("%v is not an ErrNotWasm", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// MaxTable is domain.MaxTableSize as a uint64 for uleb.
const MaxTable = uint64(domain.MaxTableSize)

// manyLocals is a module of n functions declaring MaxFunctionLocals locals
// each.
func manyLocals(n int) []byte {
	decl := body(1, 0xd0, 0x86, 0x03, 0x7f, 0x0b) // 50,000 i32 locals
	var bodies []byte
	funcs := cat(uleb(uint64(n)), make([]byte, n))
	for range n {
		bodies = append(bodies, decl...)
	}
	return mod(funcType, sec(3, funcs), sec(10, uleb(uint64(n)), bodies))
}

// repeated is a module with a section id of n entries, each unit.
func repeated(id byte, n int, unit ...byte) []byte {
	b := uleb(uint64(n))
	for range n {
		b = append(b, unit...)
	}
	return mod(sec(id, b))
}

// TestCheckModule_Truncations cuts sections.wasm at every length: none
// panics, and only the cuts at a section's end are taken.
func TestCheckModule_Truncations(t *testing.T) {
	ends := sectionEnds(sectionsWasm)
	for n := len(domain.WasmHeader) + 1; n < len(sectionsWasm); n++ {
		err := domain.CheckModule(sectionsWasm[:n])
		if (err == nil) != ends[n] {
			t.Errorf("cut at %d bytes: %v (a section ends there: %v)", n, err, ends[n])
		}
	}
}

// sectionEnds returns the offsets at which the sections of a well-formed
// module end.
func sectionEnds(b []byte) map[int]bool {
	ends := map[int]bool{}
	for i := len(domain.WasmHeader); i < len(b); {
		size, shift := 0, 0
		for i++; b[i]&0x80 != 0; i++ {
			size |= int(b[i]&0x7f) << shift
			shift += 7
		}
		size |= int(b[i]) << shift
		i += 1 + size
		ends[i] = true
	}
	return ends
}

// TestCheckModule_NoAllocs: the walk allocates once (the module's totals)
// for a module it takes, however many entries it has.
func TestCheckModule_NoAllocs(t *testing.T) {
	for name, m := range map[string][]byte{"sections": sectionsWasm, "locals": manyLocals(2)} {
		if n := testing.AllocsPerRun(10, func() { _ = domain.CheckModule(m) }); n > 1 {
			t.Errorf("%s: %v allocations per run, want 1", name, n)
		}
	}
}

// BenchmarkCheckModule walks testdata/sections.wasm and, when
// JETPROP_BIG_WASM names one, a large real module (docs/limits.md has the
// numbers).
func BenchmarkCheckModule(b *testing.B) {
	mods := map[string][]byte{"sections": sectionsWasm}
	if p := os.Getenv("JETPROP_BIG_WASM"); p != "" {
		m, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		mods[filepath.Base(p)] = m
	}
	for name, m := range mods {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(m)))
			b.ReportAllocs()
			for b.Loop() {
				if err := domain.CheckModule(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
