package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Strings is a list of strings that also accepts JSON numbers and booleans,
// because Propeller's API takes task inputs as numbers or strings.
type Strings []string

// UnmarshalJSON accepts null, or an array of strings, numbers and booleans.
func (s *Strings) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = nil
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("want an array of strings or numbers: %w", err)
	}
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		v, err := scalarString(r)
		if err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, v)
	}
	*s = out
	return nil
}

func scalarString(r json.RawMessage) (string, error) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return "", fmt.Errorf("empty value")
	}
	switch r[0] {
	case '"':
		var v string
		err := json.Unmarshal(r, &v)
		return v, err
	case 't', 'f':
		var v bool
		err := json.Unmarshal(r, &v)
		return strconv.FormatBool(v), err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var v json.Number
		err := json.Unmarshal(r, &v)
		return v.String(), err
	}
	return "", fmt.Errorf("want a string or number, got %.20s", r)
}

// Int is an integer that also accepts a JSON string holding a number.
type Int int64

// UnmarshalJSON accepts 3, 3.0 and "3".
func (n *Int) UnmarshalJSON(b []byte) error {
	s, err := scalarString(b)
	if err != nil {
		return err
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = Int(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return fmt.Errorf("want an integer, got %q", s)
	}
	*n = Int(f)
	return nil
}

// OptString is a string that also accepts JSON null (as "").
type OptString string

// UnmarshalJSON accepts null, a string, or any other JSON value (kept as text).
func (o *OptString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*o = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*o = OptString(s)
	default:
		if !json.Valid(b) {
			return fmt.Errorf("invalid JSON value")
		}
		*o = OptString(b)
	}
	return nil
}

// Timestamp is a metrics timestamp in any of the three forms Propeller's
// proplets send: an RFC 3339 string (Go), {"secs_since_epoch","nanos_since_epoch"}
// (Rust's SystemTime) or a number of milliseconds of uptime (embedded C).
type Timestamp struct {
	Time     time.Time // zero when the sender gave uptime only
	UptimeMS int64     // set for the embedded form
}

// The seconds since 1970 of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z:
// the times RFC 3339 (and so MarshalJSON's output) can express.
const (
	minUnix = -62167219200
	maxUnix = 253402300799
)

// UnmarshalJSON decodes the three forms. Times outside the years 0000-9999
// (in UTC) are refused: they could not be encoded again.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		*t = Timestamp{}
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", s, err)
		}
		if u := tm.Unix(); u < minUnix || u > maxUnix {
			return fmt.Errorf("timestamp %q: outside years 0000-9999 in UTC", s)
		}
		*t = Timestamp{Time: tm}
	case '{':
		var v struct {
			Secs  *int64 `json:"secs_since_epoch"`
			Nanos int64  `json:"nanos_since_epoch"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if v.Secs == nil {
			return fmt.Errorf("timestamp object without secs_since_epoch")
		}
		if *v.Secs < minUnix || *v.Secs > maxUnix || v.Nanos < 0 || v.Nanos >= 1e9 {
			return fmt.Errorf("timestamp %d s %d ns: outside years 0000-9999", *v.Secs, v.Nanos)
		}
		*t = Timestamp{Time: time.Unix(*v.Secs, v.Nanos).UTC()}
	default:
		var ms Int
		if err := ms.UnmarshalJSON(b); err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		*t = Timestamp{UptimeMS: int64(ms)}
	}
	return nil
}

// MarshalJSON writes RFC 3339, or the uptime number when there is no time.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.Time.IsZero() {
		return json.Marshal(t.UptimeMS)
	}
	return json.Marshal(t.Time.UTC().Format(time.RFC3339Nano))
}
