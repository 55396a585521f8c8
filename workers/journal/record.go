package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record operations.
const (
	opPut byte = 'P'
	opDel byte = 'D'
)

// Record limits.
const (
	headerSize = 8 // length and checksum
	// MaxKey is the longest key a record may carry.
	MaxKey = 4096
	// MaxRecord is the largest record body: far above the 1 MiB a broker
	// accepts by default, small enough that a damaged length cannot make
	// Open allocate gigabytes.
	MaxRecord = 64 << 20
)

// Decode errors. errShort means the bytes end inside the record: at the end
// of the file that is a torn write, not damage.
var (
	errShort   = errors.New("journal: record cut short")
	errCorrupt = errors.New("journal: corrupt record")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded record; key and val alias the decoded bytes.
type record struct {
	op  byte
	key string
	val []byte
}

// appendRecord appends the encoding of a record to b.
func appendRecord(b []byte, op byte, key string, val []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, headerSize)...)
	b = append(b, op)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = append(b, val...)
	body := b[start+headerSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// recordSize is the encoded size of a record.
func recordSize(key string, val []byte) int64 {
	var tmp [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(tmp[:], uint64(len(key)))
	return int64(headerSize + 1 + n + len(key) + len(val))
}

// checkRecord rejects what a record cannot hold.
func checkRecord(key string, val []byte) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(key) > MaxKey:
		return fmt.Errorf("%w: key of %d bytes, at most %d", ErrInvalid, len(key), MaxKey)
	case recordSize(key, val)-headerSize > MaxRecord:
		return fmt.Errorf("%w: record of %d bytes, at most %d", ErrInvalid, recordSize(key, val), MaxRecord)
	}
	return nil
}

// decodeRecord decodes the record at the start of b and returns its encoded
// size. It fails with errShort when b ends inside the record and with
// errCorrupt when the record is damaged.
func decodeRecord(b []byte) (record, int, error) {
	if len(b) < headerSize {
		return record{}, 0, errShort
	}
	n := binary.LittleEndian.Uint32(b)
	if n < 2 || n > MaxRecord {
		return record{}, 0, fmt.Errorf("%w: length %d", errCorrupt, n)
	}
	if uint64(len(b)-headerSize) < uint64(n) {
		return record{}, 0, errShort
	}
	body := b[headerSize : headerSize+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, 0, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	rec, err := decodeBody(body)
	return rec, headerSize + int(n), err
}

func decodeBody(body []byte) (record, error) {
	op := body[0]
	if op != opPut && op != opDel {
		return record{}, fmt.Errorf("%w: unknown op %#x", errCorrupt, op)
	}
	klen, k := binary.Uvarint(body[1:])
	if k <= 0 || klen == 0 || klen > MaxKey || klen > uint64(len(body)-1-k) {
		return record{}, fmt.Errorf("%w: bad key length", errCorrupt)
	}
	rest := body[1+k:]
	rec := record{op: op, key: string(rest[:klen]), val: rest[klen:]}
	if op == opDel && len(rec.val) > 0 {
		return record{}, fmt.Errorf("%w: delete with a value", errCorrupt)
	}
	return rec, nil
}
