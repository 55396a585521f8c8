package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// specError is a problem in a workflow spec file, at a line when known.
// It unwraps to domain.ErrInvalid.
type specError struct {
	file string
	line int // 0: unknown
	msg  string
}

func (e *specError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return e.file + ": " + e.msg
}

func (e *specError) Unwrap() error { return domain.ErrInvalid }

// readSpec reads and checks the workflow spec in file ("-": stdin).
func readSpec(e *env, file string) (engine.WorkflowSpec, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(e.stdin)
		file = "<stdin>"
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return engine.WorkflowSpec{}, err
	}
	return parseSpec(file, data)
}

// parseSpec decodes a workflow spec written in YAML or JSON (JSON is YAML:
// both take the same path) into engine.WorkflowSpec through its json tags,
// refuses fields the spec does not have, and validates it. Every error
// names the file, and the line where it can be found.
func parseSpec(file string, data []byte) (engine.WorkflowSpec, error) {
	var spec engine.WorkflowSpec
	if len(bytes.TrimSpace(data)) == 0 {
		return spec, &specError{file: file, msg: "the file is empty (want a workflow: name, steps)"}
	}
	doc, err := yaml.YAMLToJSONStrict(data) // syntax errors and duplicate keys, with their line
	if err != nil {
		return spec, &specError{file: file, msg: oneLine(err.Error())}
	}
	var tree any
	if err := json.Unmarshal(doc, &tree); err != nil {
		return spec, &specError{file: file, msg: err.Error()}
	}
	if errs := unknownFields(file, data, tree, reflect.TypeFor[engine.WorkflowSpec](), ""); len(errs) > 0 {
		return spec, errors.Join(errs...)
	}
	// UnmarshalStrict turns YAML numbers and booleans into the strings the
	// spec wants (inputs: [10, 20]) and keeps DisallowUnknownFields as a net.
	if err := yaml.UnmarshalStrict(data, &spec); err != nil {
		return spec, decodeError(file, data, err)
	}
	if err := spec.Validate(); err != nil {
		return spec, &specError{file: file, msg: strings.TrimPrefix(err.Error(), domain.ErrInvalid.Error()+": ")}
	}
	return spec, nil
}

// unknownFields reports every key of tree (decoded JSON) that names no
// field of t (matched as encoding/json matches: by json tag, else by name,
// case-insensitively), in key order.
func unknownFields(file string, src []byte, tree any, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs []error
	switch t.Kind() {
	case reflect.Struct:
		m, _ := tree.(map[string]any)
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			ft, ok := lookupField(fields, k)
			if !ok {
				errs = append(errs, unknownField(file, src, path, k, fields))
				continue
			}
			errs = append(errs, unknownFields(file, src, m[k], ft, joinPath(path, k))...)
		}
	case reflect.Slice:
		l, _ := tree.([]any)
		for i, x := range l {
			errs = append(errs, unknownFields(file, src, x, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		m, _ := tree.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			errs = append(errs, unknownFields(file, src, m[k], t.Elem(), joinPath(path, k))...)
		}
	}
	return errs
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func lookupField(fields map[string]reflect.Type, key string) (reflect.Type, bool) {
	if t, ok := fields[key]; ok {
		return t, true
	}
	for name, t := range fields {
		if strings.EqualFold(name, key) {
			return t, true
		}
	}
	return nil, false
}

func unknownField(file string, src []byte, path, key string, fields map[string]reflect.Type) error {
	where := "the workflow"
	if path != "" {
		where = path
	}
	names := slices.Sorted(maps.Keys(fields))
	hint := "fields there: " + strings.Join(names, ", ")
	if s := closest(key, names); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	return &specError{file: file, line: keyLine(src, key), msg: fmt.Sprintf("unknown field %q in %s (%s)", key, where, hint)}
}

// closest returns the name nearest to key when it is near enough to be
// the one meant: the same letters without '_' and '-', or at most two
// edits away.
func closest(key string, names []string) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	best, bestDist := "", 3
	for _, n := range names {
		if norm(n) == norm(key) {
			return n
		}
		if d := editDistance(strings.ToLower(key), n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// keyLine returns the line where key is written as a mapping key in src,
// when exactly one line has it (0 otherwise): YAML block or flow style, or
// JSON.
func keyLine(src []byte, key string) int {
	re := regexp.MustCompile(`(^|[\s{,-])["']?` + regexp.QuoteMeta(key) + `["']?\s*:`)
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if re.MatchString(l) {
			if line != 0 {
				return 0
			}
			line = i + 1
		}
	}
	return line
}

// decodeError describes a value of the wrong type by its field path.
func decodeError(file string, src []byte, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return &specError{file: file, msg: oneLine(err.Error())}
	}
	if te.Field == "" {
		return &specError{file: file, msg: fmt.Sprintf("want a mapping (name:, steps:), got %s", jsonKind(te.Value))}
	}
	last := te.Field[strings.LastIndex(te.Field, ".")+1:]
	return &specError{file: file, line: keyLine(src, last), msg: fmt.Sprintf("%s: want %s, got %s", te.Field, goKind(te.Type), jsonKind(te.Value))}
}

// jsonKind names a JSON value kind (as json.UnmarshalTypeError.Value has it)
// in YAML's words.
func jsonKind(v string) string {
	switch v {
	case "array":
		return "a list"
	case "object":
		return "a mapping"
	case "string", "number", "bool":
		return "a " + v
	}
	return v
}

func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "a mapping"
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// oneLine joins the lines of a multi-line message (yaml's unmarshal errors).
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}
