package runtime_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/jetprop/jetprop/workers/runtime"
)

func TestParseValue(t *testing.T) {
	tests := []struct {
		name    string
		typ     api.ValueType
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "i32", typ: api.ValueTypeI32, in: "42", want: 42},
		{name: "i32 negative", typ: api.ValueTypeI32, in: "-1", want: 0xffffffff},
		{name: "i32 unsigned max", typ: api.ValueTypeI32, in: "4294967295", want: 0xffffffff},
		{name: "i32 too big", typ: api.ValueTypeI32, in: "4294967296", wantErr: true},
		{name: "i32 too small", typ: api.ValueTypeI32, in: "-2147483649", wantErr: true},
		{name: "i32 integral float", typ: api.ValueTypeI32, in: "3e2", want: 300},
		{name: "i32 fraction", typ: api.ValueTypeI32, in: "0.5", wantErr: true},
		{name: "i32 spaces", typ: api.ValueTypeI32, in: " 7\n", want: 7},
		{name: "i32 hex refused", typ: api.ValueTypeI32, in: "0x10", wantErr: true},
		{name: "i32 empty", typ: api.ValueTypeI32, in: "", wantErr: true},
		{name: "i64 min", typ: api.ValueTypeI64, in: "-9223372036854775808", want: 1 << 63},
		{name: "i64 unsigned max", typ: api.ValueTypeI64, in: "18446744073709551615", want: math.MaxUint64},
		{name: "i64 too big", typ: api.ValueTypeI64, in: "18446744073709551616", wantErr: true},
		{name: "i64 float too big", typ: api.ValueTypeI64, in: "1e19", wantErr: true},
		{name: "f32", typ: api.ValueTypeF32, in: "1.5", want: api.EncodeF32(1.5)},
		{name: "f32 overflow", typ: api.ValueTypeF32, in: "1e39", wantErr: true},
		{name: "f64", typ: api.ValueTypeF64, in: "-2.25", want: api.EncodeF64(-2.25)},
		{name: "f64 inf", typ: api.ValueTypeF64, in: "inf", want: api.EncodeF64(math.Inf(1))},
		{name: "f64 word", typ: api.ValueTypeF64, in: "pi", wantErr: true},
		{name: "externref", typ: api.ValueTypeExternref, in: "1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runtime.ParseValue(tc.typ, tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"0", "-1", "4294967295", "1e3", "1.5", "inf", "NaN", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range []api.ValueType{api.ValueTypeI32, api.ValueTypeI64, api.ValueTypeF32, api.ValueTypeF64} {
			v, err := runtime.ParseValue(typ, s)
			if err != nil {
				continue
			}
			if typ == api.ValueTypeI32 && v > math.MaxUint32 {
				t.Fatalf("i32 %q encoded as %#x", s, v)
			}
			if typ == api.ValueTypeI64 {
				// A signed i64 must round-trip through its decimal form.
				if n, err := strconv.ParseInt(s, 10, 64); err == nil && uint64(n) != v {
					t.Fatalf("i64 %q encoded as %#x", s, v)
				}
			}
		}
	})
}
