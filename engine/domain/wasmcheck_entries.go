package domain

// The entries of each section CheckModule walks, in the layout of the
// binary format (WebAssembly 2.0, with the extensions wazero decodes:
// rec groups, typed references, table initializers, tags).

// Leading bytes and opcodes the walk reads.
const (
	typeFunc        = 0x60
	typeRecGroup    = 0x4e
	refNullable     = 0x63
	refNonNullable  = 0x64
	tableWithInit   = 0x40
	opEnd           = 0x0b
	opGlobalGet     = 0x23
	opI32Const      = 0x41
	opI64Const      = 0x42
	opF32Const      = 0x43
	opF64Const      = 0x44
	opRefNull       = 0xd0
	opRefFunc       = 0xd2
	opVecPrefix     = 0xfd
	opV128Const     = 0x0c
	importFunc      = 0
	importTable     = 1
	importMemory    = 2
	importGlobal    = 3
	importTag       = 4
	heapFunc        = 0x70
	heapExtern      = 0x6f
	heapExn         = 0x69
	maxLEB33        = 5
	maxLEB64        = 10
	elemSegmentKind = 8 // element segment prefixes are 0 to 7
)

// typeEntry reads a function type or a rec group of them.
func (c *cursor) typeEntry(int) error {
	if len(c.b) > 0 && c.b[0] == typeRecGroup {
		c.b = c.b[1:]
		return c.each("types in a rec group", entryFuncType)
	}
	return c.funcType(0)
}

func (c *cursor) funcType(int) error {
	if c.walk.types++; c.walk.types > MaxTypes {
		return c.fail("declares more than %d function types", MaxTypes)
	}
	if b, err := c.byte("a type"); err != nil {
		return err
	} else if b != typeFunc {
		return c.fail("holds a type of form %#x, not a function type (0x60)", b)
	}
	if err := c.valTypes("parameters", MaxFunctionParams); err != nil {
		return err
	}
	return c.valTypes("results", MaxFunctionResults)
}

// valTypes reads a vector of value types of at most max entries.
func (c *cursor) valTypes(what string, max int) error {
	n, err := c.count(what)
	if err != nil {
		return err
	}
	if n > max {
		return c.fail("declares a function type with %d %s, the bound is %d", n, what, max)
	}
	for range n {
		if err := c.valType(); err != nil {
			return err
		}
	}
	return nil
}

// valType reads a value type: one byte, or a reference prefix and its
// heap type.
func (c *cursor) valType() error {
	b, err := c.byte("a value type")
	if err != nil {
		return err
	}
	if b == refNullable || b == refNonNullable {
		return c.leb("heap type", maxLEB33)
	}
	return nil
}

func (c *cursor) importEntry(int) error {
	if _, err := c.bytes("module name"); err != nil {
		return err
	}
	if _, err := c.bytes("import name"); err != nil {
		return err
	}
	kind, err := c.byte("an import")
	if err != nil {
		return err
	}
	switch kind {
	case importFunc:
		_, err = c.u32("type index")
	case importTable:
		err = c.tableType(0)
	case importMemory:
		_, err = c.limits()
	case importGlobal:
		err = c.globalType()
	case importTag:
		err = c.tag(0)
	default:
		err = c.fail("holds an import of kind %#x", kind)
	}
	return err
}

// function reads a defined function's type index.
func (c *cursor) function(i int) error {
	if c.walk.functions++; c.walk.functions > MaxFunctions {
		return c.fail("declares more than %d functions", MaxFunctions)
	}
	return c.index(i)
}

// index reads an index (a function's type, the start function, the data
// count, an element's function).
func (c *cursor) index(int) error {
	_, err := c.u32("index")
	return err
}

// tableType reads a table type (with its initializer, if it has one) and
// holds its initial size to MaxTableSize.
func (c *cursor) tableType(int) error {
	init := len(c.b) > 0 && c.b[0] == tableWithInit
	if init {
		if err := c.skip(2, "a table"); err != nil {
			return err
		}
	}
	if err := c.valType(); err != nil {
		return err
	}
	min, err := c.limits()
	if err != nil {
		return err
	}
	if min > MaxTableSize {
		return c.fail("declares a table of %d elements, the bound is %d", min, MaxTableSize)
	}
	if init {
		return c.constExpr(0)
	}
	return nil
}

// limits reads a limits type (flags, min, optional max) and returns min.
func (c *cursor) limits() (uint32, error) {
	flags, err := c.byte("limits")
	if err != nil {
		return 0, err
	}
	if flags > 3 {
		return 0, c.fail("holds limits with flags %#x", flags)
	}
	min, err := c.u32("minimum")
	if err == nil && flags&1 != 0 {
		_, err = c.u32("maximum")
	}
	return min, err
}

func (c *cursor) globalType() error {
	if err := c.valType(); err != nil {
		return err
	}
	_, err := c.byte("a global's mutability")
	return err
}

func (c *cursor) memory(int) error {
	_, err := c.limits()
	return err
}

func (c *cursor) global(int) error {
	if err := c.globalType(); err != nil {
		return err
	}
	return c.constExpr(0)
}

func (c *cursor) tag(int) error {
	if _, err := c.byte("a tag"); err != nil {
		return err
	}
	_, err := c.u32("tag type")
	return err
}

func (c *cursor) exportEntry(int) error {
	if _, err := c.bytes("export name"); err != nil {
		return err
	}
	if _, err := c.byte("an export"); err != nil {
		return err
	}
	_, err := c.u32("export index")
	return err
}

// constExpr reads a constant expression up to its end opcode.
func (c *cursor) constExpr(int) error {
	for {
		op, err := c.byte("a constant expression")
		if err != nil {
			return err
		}
		if op == opEnd {
			return nil
		}
		if err := c.constOperand(op); err != nil {
			return err
		}
	}
}

// constOperand skips the immediate of a constant instruction.
func (c *cursor) constOperand(op byte) error {
	switch op {
	case opI32Const:
		return c.leb("i32.const", maxLEB32)
	case opI64Const:
		return c.leb("i64.const", maxLEB64)
	case opF32Const:
		return c.skip(4, "f32.const")
	case opF64Const:
		return c.skip(8, "f64.const")
	case opGlobalGet, opRefFunc:
		_, err := c.u32("index")
		return err
	case opRefNull:
		return c.refNullType()
	case opVecPrefix:
		return c.v128Const()
	case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // i32 and i64 add, sub, mul
		return nil
	}
	return c.fail("holds opcode %#x in a constant expression", op)
}

func (c *cursor) refNullType() error {
	if len(c.b) > 0 && (c.b[0] == heapFunc || c.b[0] == heapExtern || c.b[0] == heapExn) {
		c.b = c.b[1:]
		return nil
	}
	_, err := c.u32("ref.null type")
	return err
}

func (c *cursor) v128Const() error {
	if op, err := c.byte("a vector opcode"); err != nil {
		return err
	} else if op != opV128Const {
		return c.fail("holds vector opcode %#x in a constant expression", op)
	}
	return c.skip(16, "v128.const")
}

// elemSegment reads an element segment of any of the 8 forms.
func (c *cursor) elemSegment(int) error {
	prefix, err := c.u32("element segment prefix")
	if err != nil {
		return err
	}
	if prefix >= elemSegmentKind {
		return c.fail("holds an element segment of form %d", prefix)
	}
	if err := c.elemHead(prefix); err != nil {
		return err
	}
	if prefix&4 == 0 {
		return c.each("function indexes", entryIndex)
	}
	return c.each("element expressions", entryConstExpr)
}

// elemHead reads what comes before an element segment's vector: a table
// index (forms 2, 6), an offset (active forms 0, 2, 4, 6), an element
// kind (1, 2, 3) or a reference type (5, 6, 7).
func (c *cursor) elemHead(prefix uint32) error {
	if prefix == 2 || prefix == 6 {
		if _, err := c.u32("table index"); err != nil {
			return err
		}
	}
	if prefix&1 == 0 {
		if err := c.constExpr(0); err != nil {
			return err
		}
	}
	switch {
	case prefix == 0 || prefix == 4:
		return nil
	case prefix&4 == 0:
		_, err := c.byte("an element kind")
		return err
	}
	return c.valType()
}

func (c *cursor) dataSegment(int) error {
	prefix, err := c.u32("data segment prefix")
	if err != nil {
		return err
	}
	switch prefix {
	case 2:
		if _, err := c.u32("memory index"); err != nil {
			return err
		}
		fallthrough
	case 0:
		if err := c.constExpr(0); err != nil {
			return err
		}
	case 1:
	default:
		return c.fail("holds a data segment of form %d", prefix)
	}
	_, err = c.bytes("data segment")
	return err
}

// codeEntry reads a function body's size and its local declarations,
// holding them to MaxFunctionLocals and the module's to its bound. The
// instructions are skipped.
func (c *cursor) codeEntry(i int) error {
	body, err := c.bytes("function body")
	if err != nil {
		return err
	}
	f := cursor{b: body, section: c.section}
	if err := f.each("local declarations", entryLocalDecl); err != nil {
		return err
	}
	m := c.walk
	switch {
	case f.locals > MaxFunctionLocals:
		return c.fail("declares %d locals in function body %d, the bound is %d", f.locals, i, MaxFunctionLocals)
	case m.locals+f.locals > m.maxLocals:
		return c.fail("declares more than %d locals in its function bodies, the bound is %d plus one per %d bytes of code",
			m.maxLocals, MaxModuleLocals, LocalsPerCodeBytes)
	}
	m.locals += f.locals
	return nil
}

// localDecl reads a count of locals and their type.
func (c *cursor) localDecl(int) error {
	n, err := c.u32("local count")
	if err != nil {
		return err
	}
	c.locals += uint64(n)
	return c.valType()
}

// Subsections of the "name" custom section that wazero decodes.
const (
	nameModule    = 0
	nameFunctions = 1
	nameLocals    = 2
)

// checkCustom reads a custom section's name and, for the "name" section
// (which runtimes decode), its subsections; other custom sections are
// opaque bytes.
func checkCustom(c *cursor) error {
	name, err := c.bytes("custom section name")
	if err != nil || string(name) != "name" {
		c.b = nil
		return err
	}
	c.section = `custom "name"`
	for len(c.b) > 0 {
		if err := c.nameSubsection(); err != nil {
			return err
		}
	}
	return nil
}

// nameSubsection reads one subsection of the "name" section, which must
// hold exactly what it declares.
func (c *cursor) nameSubsection() error {
	id, err := c.byte("a subsection")
	if err != nil {
		return err
	}
	b, err := c.bytes("subsection")
	if err != nil || id > nameLocals {
		return err
	}
	s := cursor{b: b, section: c.section}
	switch id {
	case nameModule:
		_, err = s.bytes("module name")
	case nameFunctions:
		err = s.nameMap("function names")
	case nameLocals:
		err = s.each("functions' local names", entryLocalNames)
	}
	if err == nil && len(s.b) != 0 {
		err = s.fail("has %d bytes after subsection %d", len(s.b), id)
	}
	return err
}

// localNames reads a function's index and the names of its locals.
func (c *cursor) localNames(int) error {
	if _, err := c.u32("function index"); err != nil {
		return err
	}
	return c.nameMap("local names")
}

// nameMap reads a vector of (index, name).
func (c *cursor) nameMap(what string) error { return c.each(what, entryNameAssoc) }

func (c *cursor) nameAssoc(int) error {
	if _, err := c.u32("index"); err != nil {
		return err
	}
	_, err := c.bytes("name")
	return err
}
