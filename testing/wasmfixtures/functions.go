package wasmfixtures

import (
	"crypto/rand"
	"encoding/binary"
)

// Functions returns a module of about size bytes that is code, not
// padding: add(i32, i32) -> i32 (exported, the same answer as Add) and as
// many more functions as fit, each a chain of i32 arithmetic on its
// arguments and random constants, every eighth calling the one before it.
// A runtime validates and compiles all of them, as it would a large real
// module (Padded's custom section is skipped unread). Every call gives
// other constants, so other digests.
func Functions(size int) []byte {
	var bodies [][]byte
	bodies = append(bodies, []byte{0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b}) // add: local.get 0, local.get 1, i32.add
	// total estimates the encoding's size; the encoding has the last word.
	total := 64
	for {
		for total < size {
			b := functionBody(len(bodies))
			bodies = append(bodies, b)
			total += len(b) + 4 // its size, no locals, its type index
		}
		out := encodeModule(bodies)
		if len(out) >= size {
			return out
		}
		total = len(out)
	}
}

// functionBody is the code of function k: ((x op c1) op c2 ...) + y, and
// + f(k-1)(x, y) for every eighth.
func functionBody(k int) []byte {
	var salt [160]byte
	rand.Read(salt[:])
	code := []byte{0x20, 0x00}                        // local.get 0
	ops := []byte{0x6a, 0x73, 0x6c, 0x6b, 0x71, 0x72} // i32.add xor mul sub and or
	for i := 0; i < 40; i++ {
		c := int32(binary.LittleEndian.Uint32(salt[i*4:]))
		code = append(code, 0x41)
		code = appendSLEB(code, int64(c))
		code = append(code, ops[int(salt[i])%len(ops)])
	}
	code = append(code, 0x20, 0x01, 0x6a) // + y
	if k%8 == 0 {
		code = append(code, 0x20, 0x00, 0x20, 0x01, 0x10) // call k-1
		code = appendULEB(code, uint64(k-1))
		code = append(code, 0x6a)
	}
	return append(code, 0x0b)
}

func encodeModule(bodies [][]byte) []byte {
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = appendSection(out, 1, []byte{0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f}) // (i32, i32) -> i32
	funcs := appendULEB(nil, uint64(len(bodies)))
	for range bodies {
		funcs = append(funcs, 0x00)
	}
	out = appendSection(out, 3, funcs)
	out = appendSection(out, 7, []byte{0x01, 0x03, 'a', 'd', 'd', 0x00, 0x00}) // export "add" func 0
	code := appendULEB(nil, uint64(len(bodies)))
	for _, b := range bodies {
		code = appendULEB(code, uint64(len(b)+1))
		code = append(code, 0x00) // no locals
		code = append(code, b...)
	}
	return appendSection(out, 10, code)
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendULEB(out, uint64(len(body)))
	return append(out, body...)
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
