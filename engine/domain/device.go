package domain

import "fmt"

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

// Bounds of DeviceMetadata: what a device's discovery message may make
// the engine store about it. A discovery over them is refused whole (it
// is counted and dropped, the device keeps the metadata it had).
const (
	// MaxMetadataDescription bounds the description, in bytes.
	MaxMetadataDescription = 1024
	// MaxMetadataField bounds every other string field (hostname, ip,
	// os, location, ...), in bytes; a DNS name is at most 253.
	MaxMetadataField = 256
	// MaxMetadataTags bounds the number of tags.
	MaxMetadataTags = 32
	// MaxMetadataTag bounds one tag, in bytes.
	MaxMetadataTag = 64
)

// ErrMetadataTooLarge reports device metadata over one of its bounds; it
// is an ErrInvalid.
var ErrMetadataTooLarge = fmt.Errorf("%w: device metadata over its bounds", ErrInvalid)

// Validate checks m against the Max* bounds and names the first field
// over its bound.
func (m DeviceMetadata) Validate() error {
	if len(m.Description) > MaxMetadataDescription {
		return fmt.Errorf("%w: description of %d bytes (max %d)", ErrMetadataTooLarge, len(m.Description), MaxMetadataDescription)
	}
	for _, f := range [...]struct{ name, v string }{{"location", m.Location}, {"ip", m.IP}, {"environment", m.Environment},
		{"os", m.OS}, {"hostname", m.Hostname}, {"cpu_arch", m.CPUArch}, {"proplet_version", m.PropletVersion}, {"wasm_runtime", m.WasmRuntime}} {
		if len(f.v) > MaxMetadataField {
			return fmt.Errorf("%w: %s of %d bytes (max %d)", ErrMetadataTooLarge, f.name, len(f.v), MaxMetadataField)
		}
	}
	if len(m.Tags) > MaxMetadataTags {
		return fmt.Errorf("%w: %d tags (max %d)", ErrMetadataTooLarge, len(m.Tags), MaxMetadataTags)
	}
	for i, t := range m.Tags {
		if len(t) > MaxMetadataTag {
			return fmt.Errorf("%w: tag %d of %d bytes (max %d)", ErrMetadataTooLarge, i, len(t), MaxMetadataTag)
		}
	}
	return nil
}
