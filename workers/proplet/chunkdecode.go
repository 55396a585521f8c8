package proplet

import (
	"bytes"
	"encoding/base64"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// decodeChunk decodes a Chunk exactly as wire.Decode does, faster: most of
// a chunk message is the base64 string of its data, which encoding/json
// scans three times (validate, unquote, decode) at about 50 MB/s. Here the
// bytes of that string are found with one scan of the top-level object,
// handed to encoding/base64 directly, and only the rest of the message,
// with "data":"", goes through encoding/json. Anything unusual (escapes or
// control characters in the data string, a key with escapes, "data" twice
// in any letter case, a syntax error) takes the plain path, so the result
// and the errors are those of encoding/json.
func decodeChunk(b []byte) (wire.Chunk, error) {
	var c wire.Chunk
	if len(b) > wire.MaxMessage {
		return c, wire.Decode(b, &c)
	}
	start, end, ok := dataString(b)
	if !ok {
		return c, wire.Decode(b, &c)
	}
	raw := b[start:end]
	data := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(data, raw)
	if err != nil {
		return wire.Chunk{}, wire.Decode(b, &c)
	}
	rest := make([]byte, 0, len(b)-len(raw))
	rest = append(append(rest, b[:start]...), b[end:]...)
	if err := wire.Decode(rest, &c); err != nil {
		return wire.Chunk{}, wire.Decode(b, &c) // the error for the whole message
	}
	c.Data = data[:n]
	return c, nil
}

// dataString returns where the contents of the top-level "data" string
// value start and end (between its quotes), when the message is an object
// whose data string holds no escape and no line break (the base64 decoder
// refuses every other byte a JSON string may not hold raw, and passes
// line breaks over).
func dataString(b []byte) (start, end int, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, false
	}
	found := false
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
		key, next, ok := plainString(b, i)
		if !ok {
			return 0, 0, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, false
		}
		i = skipSpace(b, i+1)
		if bytes.EqualFold(key, []byte("data")) {
			if found || i >= len(b) || b[i] != '"' {
				return 0, 0, false
			}
			n := bytes.IndexByte(b[i+1:], '"')
			if n < 0 || !base64Only(b[i+1:i+1+n]) {
				return 0, 0, false
			}
			start, end, found, next = i+1, i+1+n, true, i+2+n
		} else if next, ok = skipValue(b, i); !ok {
			return 0, 0, false
		}
		if i = skipSpace(b, next); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == '}' {
				return 0, 0, false // a trailing comma
			}
		} else if i >= len(b) || b[i] != '}' {
			return 0, 0, false
		}
	}
	if i >= len(b) || skipSpace(b, i+1) != len(b) {
		return 0, 0, false
	}
	return start, end, found
}

// base64Only reports a data string without the bytes that are JSON-only
// (escapes) or that base64 skips but JSON refuses raw (line breaks).
func base64Only(s []byte) bool {
	return bytes.IndexByte(s, '\\') < 0 && bytes.IndexByte(s, '\n') < 0 && bytes.IndexByte(s, '\r') < 0
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the string starting at b[i] == '"' that holds only
// printable ASCII and no escape; it returns its contents and the index
// after its closing quote.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	n := bytes.IndexByte(b[i+1:], '"')
	if n < 0 {
		return nil, 0, false
	}
	s = b[i+1 : i+1+n]
	for _, c := range s {
		if c < 0x20 || c == '\\' || c >= 0x7f {
			return nil, 0, false
		}
	}
	return s, i + 2 + n, true
}

// skipValue skips the value at b[i]; strings, objects and arrays are only
// matched for their delimiters (encoding/json checks them on the plain
// path's second look, or on the rest of the message).
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			n, ok := skipString(b, i)
			if !ok {
				return 0, false
			}
			i = n
		case c == '{' || c == '[':
			depth++
			i++
		case c == '}' || c == ']':
			if depth == 0 {
				return i, true
			}
			depth--
			i++
		case c == ',' && depth == 0:
			return i, true
		default:
			i++
		}
		if depth == 0 && i > 0 && (b[i-1] == '"' || b[i-1] == '}' || b[i-1] == ']') {
			return i, true
		}
	}
	return 0, false
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}
