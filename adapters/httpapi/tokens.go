package httpapi

import (
	"net/http"
	"net/url"

	"github.com/jetprop/jetprop/engine/domain"
)

// createToken makes a token and answers 201 with its secret: the only
// answer that ever holds it.
func (a *api) createToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxRequestJSON), &req); err != nil {
		a.fail(w, r, err)
		return
	}
	role, err := domain.ParseRole(req.Role)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.svc.CreateToken(r.Context(), req.Name, role, callerID(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/tokens/"+url.PathEscape(t.ID))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, NewToken{Token: TokenFrom(t.Token), Secret: t.Secret})
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	toks, total := a.svc.ListTokens(p.offset, p.limit)
	out := TokenList{Offset: p.offset, Limit: p.limit, Total: total, Tokens: make([]Token, 0, len(toks))}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, TokenFrom(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getToken(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.GetToken(r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TokenFrom(t))
}

// revokeToken revokes a token (again: no error) and answers 204 once this
// server refuses it.
func (a *api) revokeToken(w http.ResponseWriter, r *http.Request) {
	if _, err := a.svc.RevokeToken(r.Context(), r.PathValue("id"), callerID(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
