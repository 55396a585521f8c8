package httpapi

import (
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/jetprop/jetprop/engine"
)

// maxSecretJSON bounds the JSON body of PUT /secrets/{name}: the largest
// value, every byte of it escaped (\u00XX), and the rest.
const maxSecretJSON = 6*engine.MaxSecretValue + 1<<10

// setSecret seals a new value for a secret, from {"value": "..."} with
// Content-Type application/json, else from the raw body as it is, and
// answers with the secret (its name and version, never its value).
func (a *api) setSecret(w http.ResponseWriter, r *http.Request) {
	value, err := secretValue(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.svc.SetSecret(r.Context(), r.PathValue("name"), value, callerID(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SecretFrom(s))
}

// secretValue reads the value of PUT /secrets/{name}.
func secretValue(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		var req SecretRequest
		if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxSecretJSON), &req); err != nil {
			return nil, err
		}
		if req.Value == nil {
			return nil, badRequest(`want {"value": "..."}`)
		}
		return []byte(*req.Value), nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, engine.MaxSecretValue))
	if err != nil {
		return nil, jsonErr(err)
	}
	return b, nil
}

func (a *api) listSecrets(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	secrets, total := a.svc.ListSecrets(p.offset, p.limit)
	out := SecretList{Offset: p.offset, Limit: p.limit, Total: total, Secrets: make([]Secret, 0, len(secrets))}
	for _, s := range secrets {
		out.Secrets = append(out.Secrets, SecretFrom(s))
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteSecret deletes a secret and answers 204; tasks that refer to it
// fail when they are dispatched.
func (a *api) deleteSecret(w http.ResponseWriter, r *http.Request) {
	if _, err := a.svc.DeleteSecret(r.Context(), r.PathValue("name"), callerID(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// SecretRequest is the JSON body of PUT /secrets/{name}.
type SecretRequest struct {
	Value *string `json:"value"`
}

// Secret is a secret as the API shows it: its name and version, never its
// value, sealed or not.
type Secret struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	KeyID     string    `json:"key_id"` // which key sealed it (a hash of the key, not the key)
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"` // the id of the token that set it last
}

// SecretList is a page of GET /secrets, by name.
type SecretList struct {
	Offset  int      `json:"offset"`
	Limit   int      `json:"limit"`
	Total   int      `json:"total"`
	Secrets []Secret `json:"secrets"`
}

// SecretFrom returns the API view of a secret.
func SecretFrom(s engine.Secret) Secret {
	return Secret{Name: s.Name, Version: s.Version, KeyID: s.KeyID, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, UpdatedBy: s.UpdatedBy}
}
