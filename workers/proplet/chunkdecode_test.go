package proplet

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

var chunkSeeds = []string{
	`{"app_name":"a","chunk_idx":1,"total_chunks":2,"data":"AAEC"}`,
	`{"app_name":"a","chunk_idx":"1","total_chunks":2.0,"data":"AAEC","digest":"sha256:x","size":3}`,
	` { "data" : "AAEC" , "app_name" : "a" } `,
	`{"Data":"AAEC","DATA":"AAE="}`,
	`{"data":"AA\u0045C"}`,
	`{"data":"AA\/EC"}`,
	`{"data":"AAE"}`,
	`{"data":"AA\nEC"}`,
	`{"data":null,"app_name":"a"}`,
	`{"data":"","error":"gone"}`,
	`{"x":{"data":"AAEC"},"data":"AAEC","y":["}",{"a":"\""}]}`,
	`{"data":"AAEC",}`,
	`{"data":"AAEC"} x`,
	`{"data":"AAEC"`,
	`{"d\u0061ta":"AAEC"}`,
	`{"app_name":1,"data":"AAEC"}`,
	`["data","AAEC"]`,
	`{"a":tru"data":"AAEC"}`,
	`{}`,
	``,
}

// FuzzDecodeChunk: the fast chunk decoder agrees with encoding/json on
// every input: the same chunk, or an error from both.
func FuzzDecodeChunk(f *testing.F) {
	for _, s := range chunkSeeds {
		f.Add([]byte(s))
	}
	big, _ := json.Marshal(wire.Chunk{AppName: "m", ChunkIdx: 3, TotalChunks: 9, Data: []byte(strings.Repeat("wasm", 1000)), Digest: "sha256:ab", Size: 9})
	f.Add(big)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeChunk(b)
		var want wire.Chunk
		werr := wire.Decode(b, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("decodeChunk(%q): error %v, encoding/json: %v", b, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeChunk(%q) = %+v, encoding/json: %+v", b, got, want)
		}
		if err != nil && err.Error() != werr.Error() {
			t.Fatalf("decodeChunk(%q): error %q, encoding/json: %q", b, err, werr)
		}
	})
}

func BenchmarkDecodeChunk(b *testing.B) {
	msg, _ := json.Marshal(wire.Chunk{AppName: "sha256:ab", ChunkIdx: 3, TotalChunks: 9, Data: make([]byte, 512000), Digest: "sha256:ab", Size: 9})
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(512000)
		for b.Loop() {
			if _, err := decodeChunk(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(512000)
		for b.Loop() {
			var c wire.Chunk
			if err := wire.Decode(msg, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
