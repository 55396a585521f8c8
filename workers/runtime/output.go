package runtime

import (
	"bytes"
	"fmt"
	"sync"
	"unicode/utf8"
)

// truncatedMarker ends output that went over the cap, with the number of
// bytes dropped: "…[truncated 15728640 bytes]".
const truncatedMarker = "\n…[truncated %d bytes]"

// capped collects output up to a limit and counts what it drops. Writes
// never fail, so a guest (or an external process) is not surprised by an
// I/O error and never blocks on a full pipe; what went over the limit is
// replaced by truncatedMarker. It is safe for concurrent writers (os/exec
// copies stdout and stderr in their own goroutines).
type capped struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	limit   int
	dropped int64
}

func newCapped(limit int) *capped { return &capped{limit: limit} }

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := max(c.limit-c.buf.Len(), 0)
	if len(p) > room {
		c.dropped += int64(len(p) - room)
		c.buf.Write(p[:room])
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

// String returns what was kept, ending with the marker when bytes were
// dropped. A character cut in two by the limit is dropped whole.
func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped == 0 {
		return c.buf.String()
	}
	kept := c.buf.Bytes()
	cut := runeStart(kept)
	return string(kept[:cut]) + fmt.Sprintf(truncatedMarker, c.dropped+int64(len(kept)-cut))
}

// runeStart returns where a UTF-8 character left incomplete at the end of
// b begins (len(b) when none is).
func runeStart(b []byte) int {
	for i := len(b) - 1; i >= max(len(b)-utf8.UTFMax+1, 0); i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}
