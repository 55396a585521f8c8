package wire_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

func TestStrings(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wire.Strings
		wantErr bool
	}{
		{name: "strings", in: `["a","b"]`, want: wire.Strings{"a", "b"}},
		{name: "numbers", in: `[1, -2, 3.5, 1e3, 0]`, want: wire.Strings{"1", "-2", "3.5", "1e3", "0"}},
		{name: "big integer kept exact", in: `[18446744073709551615]`, want: wire.Strings{"18446744073709551615"}},
		{name: "bools", in: `[true,false]`, want: wire.Strings{"true", "false"}},
		{name: "mixed", in: `["1", 2, true]`, want: wire.Strings{"1", "2", "true"}},
		{name: "spaces", in: ` [ 1 , "x" ] `, want: wire.Strings{"1", "x"}},
		{name: "null", in: `null`, want: nil},
		{name: "empty", in: `[]`, want: wire.Strings{}},
		{name: "escaped", in: `["a\"b","\u00e9"]`, want: wire.Strings{`a"b`, "é"}},
		{name: "null element", in: `[null]`, wantErr: true},
		{name: "object element", in: `[{"a":1}]`, wantErr: true},
		{name: "array element", in: `[[1]]`, wantErr: true},
		{name: "not an array", in: `"1 2"`, wantErr: true},
		{name: "object", in: `{"0":"a"}`, wantErr: true},
		{name: "number", in: `7`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got wire.Strings
			err := json.Unmarshal([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wire.Int
		wantErr bool
	}{
		{name: "int", in: `3`, want: 3},
		{name: "negative", in: `-3`, want: -3},
		{name: "float with no fraction", in: `3.0`, want: 3},
		{name: "exponent", in: `1e3`, want: 1000},
		{name: "string", in: `"3"`, want: 3},
		{name: "string float", in: `"3.0"`, want: 3},
		{name: "max int64", in: `9223372036854775807`, want: 1<<63 - 1},
		{name: "min int64", in: `-9223372036854775808`, want: -1 << 63},
		{name: "fraction", in: `3.5`, wantErr: true},
		{name: "too big", in: `9223372036854775808`, wantErr: true},
		{name: "far too big", in: `1e300`, wantErr: true},
		{name: "word", in: `"three"`, wantErr: true},
		{name: "empty string", in: `""`, wantErr: true},
		{name: "bool", in: `true`, wantErr: true},
		{name: "NaN string", in: `"NaN"`, wantErr: true},
		{name: "Inf string", in: `"Inf"`, wantErr: true},
		{name: "array", in: `[3]`, wantErr: true},
		{name: "object", in: `{"n":3}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got wire.Int
			err := json.Unmarshal([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Unmarshal(%s) = %d, %v; want error %v", tc.in, got, err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestOptString(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wire.OptString
		wantErr bool
	}{
		{name: "null", in: `null`, want: ""},
		{name: "string", in: `"boom"`, want: "boom"},
		{name: "empty", in: `""`, want: ""},
		{name: "escaped", in: `"a\nb"`, want: "a\nb"},
		{name: "number", in: `5`, want: "5"},
		{name: "object", in: `{"code":1}`, want: `{"code":1}`},
		{name: "bool", in: `false`, want: "false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := wire.OptString("previous")
			err := json.Unmarshal([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Unmarshal(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wire.Timestamp
		wantErr bool
	}{
		{name: "RFC 3339", in: `"2026-11-21T12:00:00Z"`, want: wire.Timestamp{Time: ts.Truncate(time.Second)}},
		{name: "RFC 3339 nanos", in: `"2026-11-21T12:00:00.123456789Z"`, want: wire.Timestamp{Time: ts}},
		{name: "RFC 3339 offset", in: `"2026-11-21T13:00:00.123456789+01:00"`, want: wire.Timestamp{Time: ts}},
		{name: "Go zero time", in: `"0001-01-01T00:00:00Z"`, want: wire.Timestamp{}},
		{name: "rust", in: `{"secs_since_epoch":1795262400,"nanos_since_epoch":123456789}`, want: wire.Timestamp{Time: ts}},
		{name: "rust epoch", in: `{"secs_since_epoch":0,"nanos_since_epoch":0}`, want: wire.Timestamp{Time: time.Unix(0, 0).UTC()}},
		{name: "rust extra fields", in: `{"secs_since_epoch":1795262400,"nanos_since_epoch":0,"x":1}`, want: wire.Timestamp{Time: ts.Truncate(time.Second)}},
		{name: "uptime", in: `987654`, want: wire.Timestamp{UptimeMS: 987654}},
		{name: "uptime zero", in: `0`, want: wire.Timestamp{}},
		{name: "uptime float", in: `1000.0`, want: wire.Timestamp{UptimeMS: 1000}},
		{name: "null", in: `null`, want: wire.Timestamp{}},
		{name: "last RFC 3339 instant", in: `"9999-12-31T23:59:59.999999999Z"`, want: wire.Timestamp{Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{name: "first RFC 3339 instant", in: `"0000-01-01T00:00:00Z"`, want: wire.Timestamp{Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "rust last instant", in: `{"secs_since_epoch":253402300799,"nanos_since_epoch":999999999}`, want: wire.Timestamp{Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		// Times that decode but cannot be encoded again (found by FuzzDecodeMetrics).
		{name: "offset before year 0", in: `"0000-01-01T00:00:00+01:00"`, wantErr: true},
		{name: "offset after year 9999", in: `"9999-12-31T23:00:00-01:00"`, wantErr: true},
		{name: "rust after year 9999", in: `{"secs_since_epoch":253402300800}`, wantErr: true},
		{name: "rust far future", in: `{"secs_since_epoch":9223372036854775807,"nanos_since_epoch":999999999}`, wantErr: true},
		{name: "rust far past", in: `{"secs_since_epoch":-9223372036854775808}`, wantErr: true},
		{name: "rust nanos negative", in: `{"secs_since_epoch":1,"nanos_since_epoch":-1}`, wantErr: true},
		{name: "rust nanos a second", in: `{"secs_since_epoch":1,"nanos_since_epoch":1000000000}`, wantErr: true},
		{name: "date only", in: `"2026-11-21"`, wantErr: true},
		{name: "space separated", in: `"2026-11-21 12:00:00Z"`, wantErr: true},
		{name: "empty string", in: `""`, wantErr: true},
		{name: "rust without secs", in: `{"nanos_since_epoch":1}`, wantErr: true},
		{name: "rust secs a string", in: `{"secs_since_epoch":"1"}`, wantErr: true},
		{name: "rust secs fractional", in: `{"secs_since_epoch":1.5}`, wantErr: true},
		{name: "uptime fractional", in: `1.5`, wantErr: true},
		{name: "bool", in: `true`, wantErr: true},
		{name: "array", in: `[1]`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got wire.Timestamp
			err := json.Unmarshal([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Unmarshal(%s) = %+v, %v; want error %v", tc.in, got, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if !got.Time.Equal(tc.want.Time) || got.UptimeMS != tc.want.UptimeMS {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var back wire.Timestamp
			if err := json.Unmarshal(b, &back); err != nil || !back.Time.Equal(got.Time) || back.UptimeMS != got.UptimeMS {
				t.Fatalf("round trip through %s: %+v, %v", b, back, err)
			}
			if !back.Time.IsZero() && back.Time.Location() != time.UTC {
				t.Fatalf("re-decoded time in %v, want UTC", back.Time.Location())
			}
		})
	}
}
