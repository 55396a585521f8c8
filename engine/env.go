package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// EnvProblems returns what makes env impossible to hand to a task, one
// problem per entry in key order, or nil: a key that is empty, holds '=' or
// NUL, or a value holding NUL. Those are the entries a runtime refuses when
// the task starts (wazero's ModuleConfig.WithEnv, an external runtime's
// process environment, a libc's setenv), so a create that carries one is
// refused instead of failing later on its device. Any other key is
// allowed, "my-var" and "a.b" included: WASI and both runtimes take them,
// and Propeller's proplets pass env through as given.
func EnvProblems(env map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if p := envProblem(k, env[k]); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envProblem(k, v string) string {
	switch {
	case k == "":
		return "env: a key is empty (want a name such as LOG_LEVEL)"
	case strings.ContainsRune(k, '='):
		return fmt.Sprintf("env: key %q holds '=' (it separates the name from the value)", k)
	case strings.ContainsRune(k, 0):
		return fmt.Sprintf("env: key %q holds a NUL byte", k)
	case strings.ContainsRune(v, 0):
		return fmt.Sprintf("env: the value of %q holds a NUL byte", k)
	}
	return ""
}
