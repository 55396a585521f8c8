package domain

import (
	"errors"
	"fmt"
	"io"
)

// MaxExportSection bounds the export section an ExportScanner keeps in
// memory; a larger one is an error (its exports stay unknown). 10,000
// exports of 100-byte names take 1 MiB.
const MaxExportSection = 4 << 20

// Section ids of a core wasm module (binary format, section 5.5.2).
const (
	sectionExport = 7
	sectionStart  = 8
	sectionElem   = 9
	sectionCode   = 10
	sectionData   = 11
	sectionCount  = 12
)

// exportFunc is the kind byte of an exported function.
const exportFunc = 0

// maxLEB32 is the longest LEB128 encoding of a u32.
const maxLEB32 = 5

var errTruncated = errors.New("wasm: module ends inside a section")

// scanner states.
const (
	scanHeader = iota
	scanID
	scanSize
	scanSkip
	scanCollect
	scanDone
)

// ExportScanner reads the names of the functions a core wasm module exports
// from the module's bytes as they are written to it, keeping only the
// export section: it stops looking at the first section that may only come
// after the export section (start, element, data count, code, data), so a
// reader of the module can stop there (Done). It never fails a Write: an
// io.TeeReader or io.MultiWriter over it reads the module as if it were
// not there; a module it cannot read is reported by Exports.
type ExportScanner struct {
	state   int
	buf     []byte // the header, or the export section being collected
	id      byte   // the current section
	size    uint64 // the current section's size, while its LEB128 is read
	shift   uint   // of the size's next LEB128 byte
	remain  int64  // bytes of the current section not yet seen
	exports []string
	err     error
}

// Done reports whether the scanner has what it needs: the exports, or an
// error. Later bytes are ignored.
func (s *ExportScanner) Done() bool { return s.state == scanDone }

// Exports returns the exported functions' names in declared order, once
// the module was written whole or Done. A module without an export section
// exports nothing; one that does not start with WasmHeader, or whose
// sections cannot be read, is an error.
func (s *ExportScanner) Exports() ([]string, error) {
	switch {
	case s.state == scanDone:
		return s.exports, s.err
	case s.state == scanID:
		return nil, nil // ended at a section boundary with no export section
	case s.state == scanHeader:
		return nil, errNoHeader
	}
	return nil, errTruncated
}

// Write implements io.Writer; it always takes all of p.
func (s *ExportScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.state != scanDone {
		p = s.step(p)
	}
	return n, nil
}

// step consumes what it can of p in the current state.
func (s *ExportScanner) step(p []byte) []byte {
	switch s.state {
	case scanHeader:
		k := min(len(WasmHeader)-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		if len(s.buf) == len(WasmHeader) {
			s.headerRead()
		}
		return p[k:]
	case scanID:
		s.sectionID(p[0])
		return p[1:]
	case scanSize:
		s.sizeByte(p[0])
		return p[1:]
	}
	k := int(min(s.remain, int64(len(p))))
	if s.state == scanCollect {
		s.buf = append(s.buf, p[:k]...)
	}
	s.remain -= int64(k)
	if s.remain == 0 {
		s.sectionEnd()
	}
	return p[k:]
}

func (s *ExportScanner) headerRead() {
	if !HasWasmHeader(s.buf) {
		s.finish(nil, errNoHeader)
		return
	}
	s.buf, s.state = nil, scanID
}

func (s *ExportScanner) sectionID(id byte) {
	switch id {
	case sectionStart, sectionElem, sectionCount, sectionCode, sectionData:
		s.finish(nil, nil) // past where an export section may be
		return
	}
	s.id, s.size, s.shift, s.state = id, 0, 0, scanSize
}

func (s *ExportScanner) sizeByte(b byte) {
	s.size |= uint64(b&0x7f) << s.shift
	s.shift += 7
	switch {
	case b&0x80 != 0 && s.shift >= 7*maxLEB32:
		s.finish(nil, fmt.Errorf("wasm: section %d: size is not a u32", s.id))
	case b&0x80 != 0:
	case s.id == sectionExport && s.size > MaxExportSection:
		s.finish(nil, fmt.Errorf("wasm: export section of %d bytes is over %d", s.size, MaxExportSection))
	default:
		s.remain, s.state = int64(s.size), scanSkip
		if s.id == sectionExport {
			s.state, s.buf = scanCollect, make([]byte, 0, s.size)
		}
		if s.remain == 0 {
			s.sectionEnd()
		}
	}
}

func (s *ExportScanner) sectionEnd() {
	if s.state == scanCollect {
		s.finish(parseExports(s.buf))
		return
	}
	s.state = scanID
}

func (s *ExportScanner) finish(exports []string, err error) {
	s.exports, s.err, s.buf, s.state = exports, err, nil, scanDone
}

// parseExports reads an export section's vector and returns the names of
// the functions in it.
func parseExports(b []byte) ([]string, error) {
	count, b, err := readU32(b)
	if err != nil {
		return nil, err
	}
	var names []string
	for i := uint32(0); i < count; i++ {
		var n uint32
		if n, b, err = readU32(b); err != nil {
			return nil, err
		}
		if uint64(n)+1 > uint64(len(b)) {
			return nil, fmt.Errorf("wasm: export %d: name runs past the section", i)
		}
		name, kind := string(b[:n]), b[n]
		if _, b, err = readU32(b[n+1:]); err != nil {
			return nil, err
		}
		if kind == exportFunc {
			names = append(names, name)
		}
	}
	return names, nil
}

// readU32 reads an unsigned LEB128 u32 from the front of b.
func readU32(b []byte) (uint32, []byte, error) {
	var v uint64
	for i := 0; i < maxLEB32 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, nil, errors.New("wasm: a u32 overflows")
			}
			return uint32(v), b[i+1:], nil
		}
	}
	return 0, nil, errors.New("wasm: a u32 is truncated or too long")
}

// ReadExports returns the functions the module r holds exports (see
// ExportScanner), reading r only up to the end of its export section.
func ReadExports(r io.Reader) ([]string, error) {
	var s ExportScanner
	buf := make([]byte, 32<<10)
	for !s.Done() {
		n, err := r.Read(buf)
		_, _ = s.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return s.Exports()
}
