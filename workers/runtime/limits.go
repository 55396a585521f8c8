package runtime

import (
	"errors"

	"github.com/jetprop/jetprop/engine/domain"
)

// errTruncated reports a module that ends inside a section or number.
var errTruncated = errors.New("truncated")

// sectionMemory is the id of the memory section in the wasm binary format.
const sectionMemory = 5

// DeclaredMinPages returns the largest minimum, in pages, of the memories a
// module defines in its memory section, with ok false when the bytes are not
// a wasm module or have no memory section. It reads only section headers and
// the memory section, so it is cheap, and it never panics on bad input.
func DeclaredMinPages(module []byte) (pages uint32, ok bool) {
	if !domain.HasWasmHeader(module) {
		return 0, false
	}
	r := module[len(domain.WasmHeader):]
	for len(r) > 0 {
		id := r[0]
		size, n, err := readU32(r[1:])
		if err != nil || uint64(len(r)) < 1+uint64(n)+uint64(size) {
			return 0, false
		}
		body := r[1+n : 1+n+int(size)]
		if id == sectionMemory {
			return memoryMin(body)
		}
		if id > sectionMemory && id != 0 {
			return 0, false // sections after memory (custom sections are 0)
		}
		r = r[1+n+int(size):]
	}
	return 0, false
}

// memoryMin reads a memory section: a vector of limits.
func memoryMin(body []byte) (uint32, bool) {
	count, n, err := readU32(body)
	if err != nil {
		return 0, false
	}
	body = body[n:]
	var most uint32
	for range count {
		lim, rest, err := readLimits(body)
		if err != nil {
			return 0, false
		}
		most, body = max(most, lim), rest
	}
	return most, true
}

// readLimits reads flags, min and, when flagged, max; it returns min.
func readLimits(b []byte) (uint32, []byte, error) {
	if len(b) == 0 {
		return 0, nil, errTruncated
	}
	flags := b[0]
	lo, n, err := readU32(b[1:])
	if err != nil {
		return 0, nil, err
	}
	b = b[1+n:]
	if flags&1 != 0 {
		_, n, err := readU32(b)
		if err != nil {
			return 0, nil, err
		}
		b = b[n:]
	}
	return lo, b, nil
}

// readU32 decodes an unsigned LEB128 number of at most 5 bytes.
func readU32(b []byte) (v uint32, n int, err error) {
	for shift := uint(0); n < 5; shift += 7 {
		if n >= len(b) {
			return 0, 0, errTruncated
		}
		c := b[n]
		n++
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, n, nil
		}
	}
	return 0, 0, errTruncated
}
