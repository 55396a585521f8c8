package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jetprop/jetprop/engine/domain"
)

// functionFallbacks are the exports a proplet calls, in this order, when
// the module does not export the function a task names (Propeller's
// convention; a module exporting _start runs as a WASI command).
var functionFallbacks = []string{"main", "run", "_start"}

// maxListedExports bounds the exports a refusal lists.
const maxListedExports = 20

// CheckFunction refuses (domain.ErrInvalid) a task that calls fn on a
// module exporting exports (its exported functions), when no proplet could
// call anything: fn is not exported, nor is any of main, run and _start. The
// error names the module as described ("module add:1", "the uploaded
// module") and lists what it exports.
func CheckFunction(fn, module string, exports []string) error {
	if slices.Contains(exports, fn) || slices.ContainsFunc(functionFallbacks, func(f string) bool { return slices.Contains(exports, f) }) {
		return nil
	}
	return fmt.Errorf("%w: function %q is not exported by %s (nor is %s, which proplets fall back to); it exports %s",
		domain.ErrInvalid, fn, module, otherFallbacks(fn), listExports(exports))
}

// otherFallbacks names the fallbacks other than fn: "main, run or _start".
func otherFallbacks(fn string) string {
	others := slices.DeleteFunc(slices.Clone(functionFallbacks), func(f string) bool { return f == fn })
	return strings.Join(others[:len(others)-1], ", ") + " or " + others[len(others)-1]
}

func listExports(exports []string) string {
	if len(exports) == 0 {
		return "no functions"
	}
	sorted := slices.Sorted(slices.Values(exports))
	more := ""
	if len(sorted) > maxListedExports {
		sorted, more = sorted[:maxListedExports], fmt.Sprintf(" and %d more", len(sorted)-maxListedExports)
	}
	quoted := make([]string, len(sorted))
	for i, e := range sorted {
		quoted[i] = fmt.Sprintf("%q", e)
	}
	return strings.Join(quoted, ", ") + more
}
