package runtime

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

var errNotInteger = errors.New("not an integer")

// parseInputs converts inputs to wasm values by the export's param types.
func parseInputs(def api.FunctionDefinition, inputs []string) ([]uint64, error) {
	types := def.ParamTypes()
	if len(inputs) != len(types) {
		return nil, fmt.Errorf("%w: %s takes %d params (%s), got %d inputs",
			ErrInputs, def.ExportNames()[0], len(types), typeList(types), len(inputs))
	}
	out := make([]uint64, len(types))
	for i, t := range types {
		v, err := ParseValue(t, inputs[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %s param %s: %w", ErrInputs, def.ExportNames()[0], paramName(def, i), err)
		}
		out[i] = v
	}
	return out, nil
}

// ParseValue parses s as a wasm value of type t, in wazero's uint64
// encoding. Integers accept signed and unsigned decimal, and integral
// floats such as "10.0" or "1e3"; floats accept anything strconv does.
func ParseValue(t api.ValueType, s string) (uint64, error) {
	s = strings.TrimSpace(s)
	switch t {
	case api.ValueTypeI32:
		v, err := parseInteger(s, 32)
		return uint64(uint32(v)), typed(err, t, s)
	case api.ValueTypeI64:
		v, err := parseInteger(s, 64)
		return uint64(v), typed(err, t, s)
	case api.ValueTypeF32:
		f, err := strconv.ParseFloat(s, 32)
		return api.EncodeF32(float32(f)), typed(err, t, s)
	case api.ValueTypeF64:
		f, err := strconv.ParseFloat(s, 64)
		return api.EncodeF64(f), typed(err, t, s)
	}
	return 0, fmt.Errorf("type %s is not supported as an input", api.ValueTypeName(t))
}

func typed(err error, t api.ValueType, s string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%q is not a valid %s", s, api.ValueTypeName(t))
}

// parseInteger returns the two's complement bits of a signed or unsigned
// integer of the given size.
func parseInteger(s string, bits int) (int64, error) {
	if v, err := strconv.ParseInt(s, 10, bits); err == nil {
		return v, nil
	}
	if u, err := strconv.ParseUint(s, 10, bits); err == nil {
		return int64(u), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || !fits(f, bits) {
		return 0, errNotInteger
	}
	return int64(f), nil
}

// fits reports whether integral f is in the signed-or-unsigned range.
func fits(f float64, bits int) bool {
	lo := -math.Ldexp(1, bits-1)
	hi := math.Ldexp(1, bits)
	return f >= lo && f < hi && f < math.Ldexp(1, 63)
}

// formatValue renders a wasm value as a decimal string.
func formatValue(t api.ValueType, v uint64) string {
	switch t {
	case api.ValueTypeI32:
		return strconv.FormatInt(int64(api.DecodeI32(v)), 10)
	case api.ValueTypeI64:
		return strconv.FormatInt(int64(v), 10)
	case api.ValueTypeF32:
		return strconv.FormatFloat(float64(api.DecodeF32(v)), 'g', -1, 32)
	case api.ValueTypeF64:
		return strconv.FormatFloat(api.DecodeF64(v), 'g', -1, 64)
	}
	return strconv.FormatUint(v, 10)
}

func paramName(def api.FunctionDefinition, i int) string {
	t := api.ValueTypeName(def.ParamTypes()[i])
	if names := def.ParamNames(); i < len(names) && names[i] != "" {
		return fmt.Sprintf("%d (%s %s)", i, names[i], t)
	}
	return fmt.Sprintf("%d (%s)", i, t)
}

func typeList(types []api.ValueType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}
