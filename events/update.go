package events

import "encoding/json"

// TaskUpdated records a change of a task that is not out on a device
// (PUT /tasks/{id}, Propeller's update): each field that is set replaces
// the task's; an empty field leaves it as it was. A new ImageURL replaces
// the module with the one it names (Module empty for a remote image); a
// new Module alone (an upload) drops the image.
type TaskUpdated struct {
	Name       string            `json:"name,omitempty"`
	ImageURL   string            `json:"image_url,omitempty"`
	Module     string            `json:"module,omitempty"`
	ModuleSize int64             `json:"module_size,omitempty"`
	Inputs     []string          `json:"inputs,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	CLIArgs    []string          `json:"cli_args,omitempty"`
	Stdin      []byte            `json:"stdin,omitempty"`
	TimeoutMS  int64             `json:"timeout_ms,omitempty"`
	MemoryMiB  int               `json:"memory_mib,omitempty"`
	// Propeller's update also sets these (TaskSchema's).
	Metadata map[string]json.RawMessage `json:"metadata,omitempty"`
	Priority int                        `json:"priority,omitempty"`
}

// DeviceRemoved records that a user forgot a device (DELETE
// /proplets/{id}): it leaves the proplet listings until it announces
// itself or sends a heartbeat again. Its identity (provisioning, revocation)
// is kept: removing a device does not let it in, nor shut it out.
type DeviceRemoved struct{}

func (TaskUpdated) EventType() string   { return "task.updated" }
func (DeviceRemoved) EventType() string { return "device.removed" }
