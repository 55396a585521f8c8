package proplet

import (
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// MaxResultBytes bounds a result's text (or its error's), JSON-encoded, in
// the result message: the engine's bound on a result message
// (wire.MaxResultSize, which keeps the event recording it under the
// broker's 1 MiB payload) less 4 KiB for the other fields. The runtime caps output at
// 512 KiB, but JSON escaping can make that six times larger (control
// characters, <, >, &), and a message over the broker's limit makes the
// broker drop the connection: resent after every reconnect, it would keep
// the proplet offline. A text over the bound is cut with a marker.
const MaxResultBytes = wire.MaxResultSize - 4<<10

// cutMarker ends a text cut to fit MaxResultBytes.
const cutMarker = "\n…[cut to fit the result message: %d bytes dropped]"

// maxLoggedError bounds the error text in a log line.
const maxLoggedError = 1 << 10

// fitText returns s when its JSON encoding fits limit bytes, else its
// longest prefix (whole characters) that fits with the marker.
func fitText(s string, limit int) string {
	if encodedLen(s) <= limit {
		return s
	}
	room := limit - encodedLen(fmt.Sprintf(cutMarker, len(s)))
	n := sort.Search(len(s)+1, func(n int) bool { return encodedLen(s[:n]) > room }) - 1
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + fmt.Sprintf(cutMarker, len(s)-max(n, 0))
}

func encodedLen(s string) int {
	b, _ := json.Marshal(s) // a string always encodes
	return len(b)
}

// logError shortens an error for a log line.
func logError(err error) any {
	if err == nil || len(err.Error()) <= maxLoggedError {
		return err
	}
	s := err.Error()
	return s[:maxLoggedError] + fmt.Sprintf("…[%d bytes more]", len(s)-maxLoggedError)
}
