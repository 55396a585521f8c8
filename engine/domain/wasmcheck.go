package domain

import "fmt"

// Bounds CheckModule holds a module to beyond its bytes: what a wasm
// runtime allocates per declared item when the item costs (almost) nothing
// in the binary. Most are V8's (a module that runs in a browser fits
// them); MaxTypes is lower, and MaxModuleLocals has no counterpart there.
const (
	// MaxTypes bounds the function types of a module (rec groups'
	// included): each costs wazero about 500 bytes from 3 in the binary.
	// Toolchains deduplicate signatures, so real modules hold hundreds to
	// a few thousand; V8 allows 1,000,000.
	MaxTypes = 1 << 16
	// MaxFunctions bounds the functions a module defines (V8's): each
	// costs wazero about 300 bytes from 4 in the binary.
	MaxFunctions = 1_000_000
	// MaxFunctionParams bounds the parameters of one function type.
	MaxFunctionParams = 1000
	// MaxFunctionResults bounds the results of one function type.
	MaxFunctionResults = 1000
	// MaxFunctionLocals bounds the locals one function declares (its
	// parameters not counted): "(local i64 × 4,294,967,295)" takes 7 bytes
	// and wazero, which sizes the function's locals from it, 32 GiB.
	MaxFunctionLocals = 50_000
	// MaxModuleLocals bounds the locals all functions of a module declare
	// together, beyond one per LocalsPerCodeBytes bytes of its code
	// section: each costs a compiler tens of bytes (wazero's interpreter
	// about 130 allocated), and a module of many small functions declaring
	// MaxFunctionLocals each would take gigabytes. A 6.4 MiB Go program
	// declares about 16,000.
	MaxModuleLocals = 1 << 17
	// LocalsPerCodeBytes is how many bytes of code a module holds per
	// local it declares beyond MaxModuleLocals: a local that is set and read
	// takes 4 bytes of instructions, and a Go program declares one per
	// 400 bytes of code.
	LocalsPerCodeBytes = 8
	// MaxTableSize bounds the initial size of a table, declared or
	// imported: instantiating one costs 8 bytes per element (wazero takes
	// 2^27, 1 GiB, from a 7-byte declaration).
	MaxTableSize = 10_000_000
)

// ModuleError is a wasm module CheckModule refuses: a section whose
// declared counts or lengths do not fit its bytes, or that is over a bound.
// It is an ErrNotWasm.
type ModuleError struct {
	Section string // "type", "export", "code", "custom \"name\"", ...
	Reason  string
}

func (e *ModuleError) Error() string { return "invalid wasm module: " + e.Problem() }

// Problem is the error without its "invalid wasm module: " prefix, for
// callers that wrap it in an error of their own saying so.
func (e *ModuleError) Problem() string { return "section " + e.Section + " " + e.Reason }

// Unwrap makes a ModuleError an ErrNotWasm.
func (e *ModuleError) Unwrap() error { return ErrNotWasm }

// CheckModule walks the structure of a wasm binary before a runtime decodes
// it: every section, every vector in it (types and their parameters and
// results, imports, functions, tables, memories, globals, exports,
// elements and their nested vectors, code bodies and their locals, data
// segments, tags, the "name" custom section's maps) and every length
// (names, bodies, data). A count larger than the bytes left in its section
// (every entry takes at least one byte), a length running past its section,
// or a count over a bound above is refused with a *ModuleError. A wasm
// decoder that sizes its arrays from such counts (wazero does) then
// allocates at most a small multiple of the module's size.
//
// It checks structure only: instruction bodies are skipped, and a module
// it passes may still be invalid. It never panics and allocates nothing
// in proportion to b.
func CheckModule(b []byte) error {
	if !HasWasmHeader(b) {
		return errNoHeader
	}
	var m moduleWalk
	rest := b[len(WasmHeader):]
	for len(rest) > 0 {
		var err error
		if rest, err = m.section(rest); err != nil {
			return err
		}
	}
	return nil
}

// moduleWalk holds the totals CheckModule keeps across sections.
type moduleWalk struct {
	locals    uint64 // declared by every function so far
	maxLocals uint64 // the module's bound, once its code section is known
	types     int    // function types so far
	functions int    // functions defined so far
}

// section ids beyond those named in exports.go.
const (
	sectionCustom   = 0
	sectionType     = 1
	sectionImport   = 2
	sectionFunction = 3
	sectionTable    = 4
	sectionMemory   = 5
	sectionGlobal   = 6
	sectionTag      = 13
)

var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory",
	"global", "export", "start", "element", "code", "data", "data count", "tag"}

func sectionName(id byte) string {
	if int(id) < len(sectionNames) {
		return sectionNames[id]
	}
	return fmt.Sprintf("%d", id)
}

// section checks the section at the front of b and returns what follows.
func (m *moduleWalk) section(b []byte) ([]byte, error) {
	id := b[0]
	c := cursor{b: b[1:], section: sectionName(id)}
	size, err := c.u32("size")
	if err != nil {
		return nil, err
	}
	if uint64(size) > uint64(len(c.b)) {
		return nil, c.fail("declares %d bytes, %d are left in the module", size, len(c.b))
	}
	body := cursor{b: c.b[:size], section: c.section, walk: m}
	if err := m.content(id, &body); err != nil {
		return nil, err
	}
	if len(body.b) != 0 {
		return nil, body.fail("has %d bytes after its content", len(body.b))
	}
	return c.b[size:], nil
}

// content checks a section's content by its id.
func (m *moduleWalk) content(id byte, c *cursor) error {
	switch id {
	case sectionCustom:
		return checkCustom(c)
	case sectionType:
		return c.each("types", entryType)
	case sectionImport:
		return c.each("imports", entryImport)
	case sectionFunction:
		return c.each("functions", entryFunction)
	case sectionStart, sectionCount:
		return c.single(entryIndex)
	case sectionTable:
		return c.each("tables", entryTable)
	case sectionMemory:
		return c.each("memories", entryMemory)
	case sectionGlobal:
		return c.each("globals", entryGlobal)
	case sectionExport:
		return c.each("exports", entryExport)
	case sectionElem:
		return c.each("element segments", entryElem)
	case sectionCode:
		m.maxLocals = MaxModuleLocals + uint64(len(c.b))/LocalsPerCodeBytes
		return c.each("function bodies", entryCode)
	case sectionData:
		return c.each("data segments", entryData)
	case sectionTag:
		return c.each("tags", entryTag)
	}
	return c.fail("is not a section of a wasm module")
}

// cursor reads a section's content from the front.
type cursor struct {
	b       []byte
	section string
	walk    *moduleWalk // the module's totals
	locals  uint64      // declared by the function body being read
}

// entry names what a vector holds. each dispatches on it with a switch,
// not through a function value, so that no cursor escapes to the heap and
// the walk allocates nothing.
type entry int

const (
	entryType entry = iota
	entryImport
	entryIndex
	entryTable
	entryMemory
	entryGlobal
	entryExport
	entryElem
	entryCode
	entryData
	entryTag
	entryFuncType
	entryFunction
	entryConstExpr
	entryLocalDecl
	entryLocalNames
	entryNameAssoc
)

// read reads the entry i of a vector of e.
func (c *cursor) read(e entry, i int) error {
	switch e {
	case entryType:
		return c.typeEntry(i)
	case entryImport:
		return c.importEntry(i)
	case entryIndex:
		return c.index(i)
	case entryTable:
		return c.tableType(i)
	case entryMemory:
		return c.memory(i)
	case entryGlobal:
		return c.global(i)
	case entryExport:
		return c.exportEntry(i)
	case entryElem:
		return c.elemSegment(i)
	case entryCode:
		return c.codeEntry(i)
	case entryData:
		return c.dataSegment(i)
	case entryTag:
		return c.tag(i)
	case entryFuncType:
		return c.funcType(i)
	case entryFunction:
		return c.function(i)
	case entryConstExpr:
		return c.constExpr(i)
	case entryLocalDecl:
		return c.localDecl(i)
	case entryLocalNames:
		return c.localNames(i)
	case entryNameAssoc:
		return c.nameAssoc(i)
	}
	return c.fail("holds entries of an unknown kind %d", e)
}

func (c *cursor) fail(format string, args ...any) error {
	return &ModuleError{Section: c.section, Reason: fmt.Sprintf(format, args...)}
}

func (c *cursor) byte(what string) (byte, error) {
	if len(c.b) == 0 {
		return 0, c.fail("ends inside %s", what)
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v, nil
}

func (c *cursor) u32(what string) (uint32, error) { return c.u32of(what, "") }

// u32of reads a u32 that is the part ("count", "length") of what; the
// name is put together only for an error, so reading allocates nothing.
func (c *cursor) u32of(what, part string) (uint32, error) {
	v, rest, err := readU32(c.b)
	if err != nil && truncatedLEB(c.b, maxLEB32) {
		return 0, c.fail("ends inside its %s%s", what, part)
	}
	if err != nil {
		return 0, c.fail("%s%s: %v", what, part, err)
	}
	c.b = rest
	return v, nil
}

// truncatedLEB reports whether b ends inside an LEB128 of at most max
// bytes.
func truncatedLEB(b []byte, max int) bool {
	for i := 0; i < len(b); i++ {
		if i == max-1 || b[i]&0x80 == 0 {
			return false
		}
	}
	return true
}

// leb skips a signed LEB128 of at most max bytes (5 for s32 and s33, 10
// for s64).
func (c *cursor) leb(what string, max int) error {
	for i := 0; i < max && i < len(c.b); i++ {
		if c.b[i]&0x80 == 0 {
			c.b = c.b[i+1:]
			return nil
		}
	}
	if truncatedLEB(c.b, max) {
		return c.fail("ends inside its %s", what)
	}
	return c.fail("%s: a signed integer is too long", what)
}

func (c *cursor) skip(n int, what string) error {
	if n > len(c.b) {
		return c.fail("ends inside %s", what)
	}
	c.b = c.b[n:]
	return nil
}

// count reads a vector's length: at most the bytes left, since every entry
// takes one byte at least.
func (c *cursor) count(what string) (int, error) {
	n, err := c.u32of(what, " count")
	if err != nil {
		return 0, err
	}
	if uint64(n) > uint64(len(c.b)) {
		return 0, c.fail("declares %d %s in %d bytes", n, what, len(c.b))
	}
	return int(n), nil
}

// single reads one entry, not a vector (the start and data count
// sections).
func (c *cursor) single(read entry) error { return c.read(read, 0) }

// each reads a vector of what, calling read for each index.
func (c *cursor) each(what string, read entry) error {
	n, err := c.count(what)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := c.read(read, i); err != nil {
			return err
		}
	}
	return nil
}

// bytes reads a length-prefixed byte string (a name, a data segment's
// bytes) and returns it.
func (c *cursor) bytes(what string) ([]byte, error) {
	n, err := c.u32of(what, " length")
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(c.b)) {
		return nil, c.fail("declares a %s of %d bytes in %d bytes", what, n, len(c.b))
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v, nil
}
