package domain

// DeviceMetadata describes a device as it announces itself (Propeller's
// discovery message); every field is optional. The wire format
// (adapters/mqtt/wire.Metadata) and the device.announced event carry these
// same fields.
type DeviceMetadata struct {
	Description      string   `json:"description,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	Location         string   `json:"location,omitempty"`
	IP               string   `json:"ip,omitempty"`
	Environment      string   `json:"environment,omitempty"`
	OS               string   `json:"os,omitempty"`
	Hostname         string   `json:"hostname,omitempty"`
	CPUArch          string   `json:"cpu_arch,omitempty"`
	TotalMemoryBytes int64    `json:"total_memory_bytes,omitempty"`
	PropletVersion   string   `json:"proplet_version,omitempty"`
	WasmRuntime      string   `json:"wasm_runtime,omitempty"`
}
