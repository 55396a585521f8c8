package engine

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/jetprop/jetprop/engine/domain"
)

// secretRefRE finds ${secret:NAME} in an environment value; what NAME may
// be is ValidateSecretName's to say.
var secretRefRE = regexp.MustCompile(`\$\{secret:([^}]*)\}`)

// SecretRef is how an environment value refers to a secret: the whole
// value or a part of it ("Bearer ${secret:api_token}").
func SecretRef(name string) string { return "${secret:" + name + "}" }

// SecretRefs returns the names of the secrets env's values refer to,
// sorted, each once. A reference whose name is not valid is an error
// wrapping domain.ErrInvalid that names the variable.
func SecretRefs(env map[string]string) ([]string, error) {
	names, problems := secretRefs(env)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", domain.ErrInvalid, strings.Join(problems, "; "))
	}
	return names, nil
}

// secretRefs returns the valid names env refers to, sorted and compacted,
// and a problem for each reference whose name is not valid.
func secretRefs(env map[string]string) (names, problems []string) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		for _, m := range secretRefRE.FindAllStringSubmatch(env[k], -1) {
			if !secretNameRE.MatchString(m[1]) {
				problems = append(problems, fmt.Sprintf("env %s: %s: a secret's name is 1 to 64 letters, digits, '-' or '_'", k, m[0]))
				continue
			}
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return slices.Compact(names), problems
}

// ResolveSecrets returns a copy of env with every ${secret:NAME} replaced
// by values[NAME]; env itself is left as it is. values must hold every
// name SecretRefs returns for env.
func ResolveSecrets(env, values map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = secretRefRE.ReplaceAllStringFunc(v, func(ref string) string {
			return values[secretRefRE.FindStringSubmatch(ref)[1]]
		})
	}
	return out
}
