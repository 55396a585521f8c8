package events

// Secret events (stream SECRETS, subject jp.evt.secret.<name>). A secret's
// value is never in an event: only its ciphertext, sealed with AES-256-GCM
// under a key the event store never sees, with the secret's name as
// additional data (so a ciphertext moved to another name does not open).

// SecretSet records a secret's new value, sealed.
type SecretSet struct {
	// Ciphertext is the nonce followed by the sealed value and its tag.
	Ciphertext []byte `json:"ciphertext"`
	// KeyID names the key it was sealed with (not the key: a hash of it),
	// so that a server with another key says so instead of failing to
	// open it.
	KeyID   string `json:"key_id"`
	Version int    `json:"version"`          // 1 for the first value, one more for each next
	SetBy   string `json:"set_by,omitempty"` // the id of the API token that set it; "" in dev mode
}

// SecretDeleted records that a secret no longer exists: tasks that refer
// to it fail when they are dispatched.
type SecretDeleted struct {
	DeletedBy string `json:"deleted_by,omitempty"` // the id of the API token that deleted it; "" in dev mode
}

func (SecretSet) EventType() string     { return "secret.set" }
func (SecretDeleted) EventType() string { return "secret.deleted" }
