package wasmfixtures

import "crypto/rand"

// Padded returns module followed by a custom section named "pad" holding
// random bytes, so that the result is exactly size bytes (when size leaves
// room for the section's header and one byte; otherwise a little more: an
// empty custom section at the very end trips wazero's decoder). Custom sections
// may appear anywhere after the header and runtimes skip them, so the
// module still runs: Padded(Add(), 50<<20) is a 50 MiB module exporting
// add. Every call gives other bytes, so other digests.
func Padded(module []byte, size int) []byte {
	name := []byte("pad")
	fixed := len(module) + 1 + 1 + len(name) // section id, name length, name
	n := max(size-fixed, 1)
	for n > 1 && fixed+ulebLen(uint64(1+len(name)+n))+n > size {
		n--
	}
	out := make([]byte, 0, fixed+ulebLen(uint64(1+len(name)+n))+n)
	out = append(out, module...)
	out = append(out, 0) // custom section
	out = appendULEB(out, uint64(1+len(name)+n))
	out = append(out, byte(len(name)))
	out = append(out, name...)
	pad := make([]byte, n)
	rand.Read(pad)
	return append(out, pad...)
}

func ulebLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendULEB(b []byte, v uint64) []byte {
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
