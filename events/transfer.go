package events

// Module transfer events (stream CHUNKS, subject jp.evt.chunk.<digest>.<target>,
// where target is a proplet id or "shared" for Propeller's broadcast topic).
// They record what the engine sent, so a transfer can be followed and a
// resumed one is seen to send only the missing chunks.

// TransferRequested records a request for a module (or for some of its chunks).
type TransferRequested struct {
	AppName   string `json:"app_name"`
	Digest    string `json:"digest,omitempty"`
	Size      int64  `json:"size,omitempty"`
	ChunkSize int    `json:"chunk_size,omitempty"`
	Total     int    `json:"total_chunks,omitempty"`
	Requested int    `json:"requested"` // chunks asked for (Total when all)
	TaskID    string `json:"task_id,omitempty"`
}

// TransferSent records a run of chunks published, indexes From..To inclusive.
type TransferSent struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// TransferCompleted records that every requested chunk was published.
type TransferCompleted struct {
	Sent int `json:"sent"`
}

// TransferFailed records a module that could not be delivered.
type TransferFailed struct {
	Reason string `json:"reason"`
}

func (TransferRequested) EventType() string { return "transfer.requested" }
func (TransferSent) EventType() string      { return "transfer.sent" }
func (TransferCompleted) EventType() string { return "transfer.completed" }
func (TransferFailed) EventType() string    { return "transfer.failed" }
