package artifacts

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/jetprop/jetprop/engine/domain"
)

// validate decodes and validates the module with wazero (its structure,
// types and every function body), so a truncated or malformed module is
// refused when it is stored, not when a device first runs it. Imports are
// not resolved here. domain.CheckModule walks its structure first:
// wazero's decoder sizes its arrays from the counts a module declares,
// before it checks them against the module's bytes.
func validate(ctx context.Context, f *os.File, size int64) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return fmt.Errorf("artifacts: read spooled module: %w", err)
	}
	if err := domain.CheckModule(b); err != nil {
		return err
	}
	if err := decodeAndValidate(ctx, b); err != nil {
		return fmt.Errorf("%w: invalid module: %v", domain.ErrNotWasm, err)
	}
	return nil
}

// decodeAndValidate runs the first half of wazero's CompileModule, decode
// and validation, and stops before the engine lowers the functions (two
// thirds of an interpreter compile: 21 of 31 ms for 1 MiB of code, which
// a device compiles again anyway). wazero has no validate-only call;
// CompileModule asks the context's function listener factory for a
// listener per function after validating and before compiling, so the
// factory stops it there, by a panic recovered here. A wazero that asked
// before validating would let invalid bodies through: TestValidate_Bodies
// guards that order. Without DWARF, wazero keeps no copy of the custom
// sections.
func decodeAndValidate(ctx context.Context, b []byte) (err error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithDebugInfoEnabled(false))
	defer rt.Close(ctx)
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(validated); !ok {
				panic(r)
			}
			err = nil
		}
	}()
	_, err = rt.CompileModule(experimental.WithFunctionListenerFactory(ctx, stopWhenValidated{}), b)
	return err // a module without functions compiles in full: nothing to stop
}

// validated is the panic that stops a compile once its module is validated.
type validated struct{}

// stopWhenValidated is asked for its first listener once the module is
// validated.
type stopWhenValidated struct{}

func (stopWhenValidated) NewFunctionListener(api.FunctionDefinition) experimental.FunctionListener {
	panic(validated{})
}
