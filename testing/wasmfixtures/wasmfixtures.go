// Package wasmfixtures holds tiny WebAssembly modules for tests, each built
// with wat2wasm from the .wat file beside it and committed. Rebuild them all
// with `make wasm` (see examples/README.md).
//
// The fixtures are returned by functions, so a test that changes the bytes
// it was given cannot affect another test.
package wasmfixtures

import (
	_ "embed"
	"slices"
)

var (
	//go:embed add.wasm
	add []byte
	//go:embed fallback.wasm
	fallback []byte
	//go:embed loop.wasm
	loop []byte
	//go:embed grow.wasm
	grow []byte
	//go:embed bigmem.wasm
	bigMemory []byte
	//go:embed f64.wasm
	f64 []byte
	//go:embed i64.wasm
	i64 []byte
	//go:embed uppercase.wasm
	uppercase []byte
	//go:embed echo.wasm
	echo []byte
	//go:embed fail.wasm
	fail []byte
	//go:embed revenv.wasm
	revEnv []byte
	//go:embed growloop.wasm
	growLoop []byte
	//go:embed recurse.wasm
	recurse []byte
	//go:embed spew.wasm
	spew []byte
)

// Add exports add(i32, i32) -> i32 (the same module as examples/add).
func Add() []byte { return slices.Clone(add) }

// Fallback exports main() -> 1 and run() -> 2 and nothing else, to check
// which export a runtime falls back to when the requested one is missing.
func Fallback() []byte { return slices.Clone(fallback) }

// Loop exports loop(), which never returns, and sum(n i64) -> i64, a
// CPU-bound loop adding 0..n-1.
func Loop() []byte { return slices.Clone(loop) }

// GrowMemory has one page of memory and no declared maximum. It exports
// grow(pages i32) -> i32, returning the memory.grow result (-1 past the
// limit), and grow_or_trap(pages i32) -> i32, which traps instead of
// returning -1.
func GrowMemory() []byte { return slices.Clone(grow) }

// GrowLoop has one page of memory and no declared maximum. It exports
// run() -> i32, which grows the memory one page at a time until
// memory.grow fails, writing a byte every 4 KiB of each new page (so every
// page costs the host real memory), and returns the size in pages; and
// grow() -> i32, which does the same without writing.
func GrowLoop() []byte { return slices.Clone(growLoop) }

// Recurse exports run() -> i32, which calls itself without end, and
// wide(n i64) -> i64, the same with a larger frame: the call stack runs out.
func Recurse() []byte { return slices.Clone(recurse) }

// Spew is a WASI preview1 command whose _start writes 16 MiB to stdout.
// It also exports stderr(), which writes 16 MiB to stderr and exits with
// code 1, and forever(), which writes to stdout until stopped.
func Spew() []byte { return slices.Clone(spew) }

// BigMemory declares a minimum of 64 pages (4 MiB) and exports
// run() -> i32 returning the memory size in pages.
func BigMemory() []byte { return slices.Clone(bigMemory) }

// F64 exports mul(f64, f64) -> f64 and mul32(f32, f32) -> f32.
func F64() []byte { return slices.Clone(f64) }

// I64 exports add64(i64, i64) -> i64.
func I64() []byte { return slices.Clone(i64) }

// Uppercase is a WASI preview1 command (_start) that copies stdin to stdout
// with ASCII letters uppercased (the same module as examples/uppercase).
func Uppercase() []byte { return slices.Clone(uppercase) }

// Echo is a WASI preview1 command that prints its arguments after argv[0],
// one a line, then its environment as KEY=VALUE lines.
func Echo() []byte { return slices.Clone(echo) }

// RevEnv is a WASI preview1 command that prints its environment, each
// KEY=VALUE entry reversed, one a line: a test sees that a module got a
// value without the value appearing in the module's result.
func RevEnv() []byte { return slices.Clone(revEnv) }

// Fail is a WASI preview1 command that writes "boom: bad input\n" to stderr
// and exits with code 3.
func Fail() []byte { return slices.Clone(fail) }

// Invalid returns bytes that are not a WebAssembly module.
func Invalid() []byte { return []byte("this is not wasm\x00\x01") }

// ExportBomb is 23 bytes that wazero v1.12 could not decode under 14 GB: a
// type section, an empty export section, then a count of 268,435,455
// exports that wazero's decoder reads past the section's end and
// allocates before it reads one (11 s, 14 GB RSS in CompileModule).
// domain.CheckModule refuses it.
func ExportBomb() []byte {
	return []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x00\x01\x7f\x07\x00\xff\xff\xff\xff\x00\x00")
}

// LocalsBomb declares 4,294,967,295 i64 locals in a 7-byte function body:
// wazero v1.12 allocates a 4 GiB slice of their types before reading the
// body. domain.CheckModule refuses it (domain.MaxFunctionLocals).
func LocalsBomb() []byte {
	return []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type 0: () -> ()
		"\x03\x02\x01\x00" + // function 0 of type 0
		"\x07\x07\x01\x03run\x00\x00" + // export "run"
		"\x0a\x0a\x01\x08\x01\xff\xff\xff\xff\x0f\x7e\x0b") // body: 4294967295 × i64, end
}
