package e2e

import (
	"encoding/base64"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// wasmguardRows: modules whose declared counts wazero would allocate before
// reading them (one took 14 GB, another asks for 32 GiB at once and kills
// the process) are refused by domain.CheckModule on every way in, naming
// the section and the count; the suite then checks the server is up.
func wasmguardRows() []badInput {
	wasm := map[string]string{"Content-Type": "application/wasm"}
	file := func(b []byte) string {
		return `{"name":"run","file":"` + base64.StdEncoding.EncodeToString(b) + `"}`
	}
	return []badInput{
		{name: "api/task-file-export-count-bomb", method: "POST", path: "/tasks", body: file(wasmfixtures.ExportBomb()), want: 400,
			msg: "invalid wasm module: section export ends inside its exports count"},
		{name: "api/task-file-locals-bomb", method: "POST", path: "/tasks", body: file(wasmfixtures.LocalsBomb()), want: 400,
			msg: "invalid wasm module: section code declares 4294967295 locals in function body 0, the bound is 50000"},
		{name: "api/artifact/push-export-count-bomb", method: "POST", path: "/artifacts?name=bomb:1", header: wasm, body: string(wasmfixtures.ExportBomb()), want: 400,
			msg: "invalid wasm module: section export ends inside its exports count"},
		{name: "api/artifact/push-locals-bomb", method: "POST", path: "/artifacts?name=bomb:1", header: wasm, body: string(wasmfixtures.LocalsBomb()), want: 400,
			msg: "section code declares 4294967295 locals"},
	}
}
