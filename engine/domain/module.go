package domain

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// DefaultMaxModuleSize is the largest module accepted unless configured.
const DefaultMaxModuleSize = 100 << 20

// WasmHeader starts every wasm module: "\0asm" and binary format version 1.
var WasmHeader = []byte("\x00asm\x01\x00\x00\x00")

// IsRegistryHost reports whether the first path element of a reference
// names a registry host rather than a repository: it holds a "." or a port,
// or is localhost (the rule Docker and oras use).
func IsRegistryHost(s string) bool { return strings.ContainsAny(s, ".:") || s == "localhost" }

// HasWasmHeader reports whether b starts with the wasm header.
func HasWasmHeader(b []byte) bool { return bytes.HasPrefix(b, WasmHeader) }

// errNoHeader is the ErrNotWasm of a stream without the header.
var errNoHeader = fmt.Errorf("%w: missing the \\0asm header of a version 1 module", ErrNotWasm)

// CopyModule copies the module r holds to w while hashing it, and returns
// its digest and size. It fails with ErrNotWasm before copying anything
// when r does not start with the wasm header, and with ErrTooLarge once
// more than max bytes arrived (w then holds a truncated copy).
func CopyModule(w io.Writer, r io.Reader, max int64) (digest string, size int64, err error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(len(WasmHeader)); !bytes.Equal(head, WasmHeader) {
		return "", 0, errNoHeader
	}
	h := NewHasher()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(br, max+1))
	if err != nil {
		return "", 0, fmt.Errorf("read module: %w", err)
	}
	if n > max {
		return "", 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return h.Digest(), n, nil
}
