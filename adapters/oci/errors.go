package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Conditions callers branch on (with errors.Is). A module larger than the
// limit is domain.ErrTooLarge; a layer that is not wasm fails the import
// with domain.ErrNotWasm.
var (
	ErrNotFound         = errors.New("not found")               // unknown repository, tag, digest or blob (404)
	ErrUnauthorized     = errors.New("unauthorized")            // missing, wrong or insufficient credentials (401, 403)
	ErrNoWasmLayer      = errors.New("no wasm layer")           // the artifact has no layer that can be the module
	ErrDigestMismatch   = errors.New("digest mismatch")         // content does not match its digest or size
	ErrUnreachable      = errors.New("registry unreachable")    // the registry could not be reached (network)
	ErrInvalidReference = errors.New("invalid image reference") // the reference cannot be parsed
)

// Error is what every operation returns: the operation, the reference as
// the caller wrote it and what went wrong. It unwraps to one of the
// sentinels above (Kind, when known) and to the underlying cause (Err), so
// errors.Is(err, oci.ErrNotFound) and errors.As(err, &errcodeResponse) both
// work.
type Error struct {
	Op   string // "pull", "push", "import"
	Ref  string // the reference as written
	Kind error  // one of the sentinels, domain.ErrTooLarge, or nil
	Msg  string // what went wrong, for people
	Err  error  // the cause, or nil
}

func (e *Error) Error() string { return "oci: " + e.Op + " " + e.Ref + ": " + e.Msg }

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Kind, e.Err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// fail describes err, met while talking to host, as an *Error.
func (c *Client) fail(op, ref, host string, err error) *Error {
	msg, kind := c.describe(host, err)
	return &Error{Op: op, Ref: ref, Kind: kind, Msg: msg, Err: err}
}

// describe classifies err by type, never by its text.
func (c *Client) describe(host string, err error) (msg string, kind error) {
	var (
		ae *authError
		er *errcode.ErrorResponse
		ue *url.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted: " + err.Error(), nil
	case errors.As(err, &ae), errors.Is(err, auth.ErrBasicCredentialNotFound):
		return c.authMessage(host, err), ErrUnauthorized
	case errors.As(err, &er):
		return c.describeResponse(host, er)
	case errors.Is(err, errdef.ErrNotFound):
		return "not found", ErrNotFound
	case errors.As(err, &ue):
		return fmt.Sprintf("registry %s unreachable: %v", host, ue.Err), ErrUnreachable
	}
	return err.Error(), nil
}

func (c *Client) authMessage(host string, err error) string {
	if !c.hasCredential() || !c.credentialFor(host) {
		return fmt.Sprintf("registry %s requires authentication and no credentials were given for it", host)
	}
	return fmt.Sprintf("authentication with registry %s failed: %v", host, err)
}

func (c *Client) describeResponse(host string, er *errcode.ErrorResponse) (msg string, kind error) {
	status := fmt.Sprintf("%d %s", er.StatusCode, http.StatusText(er.StatusCode))
	for _, e := range er.Errors {
		status += ": " + strings.ToLower(strings.ReplaceAll(e.Code, "_", " "))
		if e.Message != "" {
			status += ": " + e.Message
		}
	}
	switch er.StatusCode {
	case http.StatusUnauthorized:
		if c.hasCredential() {
			return fmt.Sprintf("registry %s rejected the credentials (%s)", host, status), ErrUnauthorized
		}
		return fmt.Sprintf("registry %s requires authentication (%s)", host, status), ErrUnauthorized
	case http.StatusForbidden:
		return fmt.Sprintf("registry %s denied access (%s)", host, status), ErrUnauthorized
	case http.StatusNotFound:
		return fmt.Sprintf("not found on %s (%s)", host, status), ErrNotFound
	case http.StatusBadRequest:
		if hasCode(er, errcode.ErrorCodeDigestInvalid, errcode.ErrorCodeSizeInvalid) {
			return fmt.Sprintf("registry %s refused the content: it does not match its digest or size (%s)", host, status), ErrDigestMismatch
		}
	}
	return fmt.Sprintf("registry %s answered %s", host, status), nil
}

func hasCode(er *errcode.ErrorResponse, codes ...string) bool {
	for _, e := range er.Errors {
		for _, code := range codes {
			if strings.EqualFold(e.Code, code) {
				return true
			}
		}
	}
	return false
}
