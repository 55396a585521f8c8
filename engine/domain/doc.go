// Package domain is jetprop's shared vocabulary: the conditions every layer
// branches on (sentinel errors the HTTP API maps to status codes), module
// digests ("sha256:<hex>"), the wasm binary header and the structural
// check of a module before a runtime decodes it (CheckModule), module size
// defaults, device metadata and the roles of API tokens.
//
// It imports only the standard library, so anything may import it — the
// pure core, the adapters, the proplet and the proxy — without pulling in
// NATS, JetStream or a wasm runtime. Nothing here does I/O beyond the
// io.Reader and io.Writer it is handed.
package domain
